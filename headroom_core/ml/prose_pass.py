"""The LLMLingua-2 request pass: word-level compression of prose, before context fitting.

What it touches: tool outputs that read as text or markdown (code too, at a gentler rate) and
long documents pasted into user messages. JSON, logs, diffs, search results, tables and HTML
stay with their own compressors; errors, protected tools and small contents are left alone.
What it keeps: identifiers, paths, URLs, numbers, inline code, the user's query terms, the
line structure, and a pasted document's opening and closing paragraphs (the instructions around
it), all verbatim. The original goes to the CCR store and the rendering ends with the standard
marker, so nothing is lost (DESIGN.md rule 4).

Cache safety (rules 2 and 3). The model is deterministic, but whether it runs in time is not. So
only contents that are new in this request (after the last assistant turn) are compressed; each
rendering is remembered by content hash in the `memo` storage and replayed byte for byte on later
turns, after a restart and on other instances. An older content without a remembered rendering
went out as it was, and stays so.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..ccr import CCRError, CCRStore, content_hash, marker_hash
from ..compression.detect import detect_kind
from ..compression.engine import CompressionConfig, TransformRecord
from ..compression.markers import has_marker, make_marker
from ..compression.policy import tool_verdict
from ..records import TransformSummary
from ..storage.base import Storage, StorageError
from ..tokens import count_text
from ..wire.common import ProviderRequest, ToolOutput
from .llmlingua import LLMLinguaService

PROSE_KINDS = frozenset({"text"})
CODE_KIND = "code"
# A user text this long is a pasted document, not a question (the engine's threshold too).
USER_DOC_MIN_TOKENS = CompressionConfig.user_min_tokens
MAX_QUERY_TERMS = 64
MEMO_NS = "llmlingua"


@dataclass(frozen=True)
class ProseRecord:
    """What the pass did to one content, for the log, metrics and the flow's comment."""

    target: str  # "tool_result" | "user_text" (as in compression.engine.TransformRecord)
    message_index: int
    tool_name: str | None
    content_kind: str  # detected kind of the original ("text", "code:python")
    outcome: str  # compressed | replayed | not_ready | timeout | too_large | error | no_savings ...
    tokens_before: int
    tokens_after: int
    hash: str = ""  # marker hash (CCR key) of the original when a marker names it
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.outcome in ("compressed", "replayed")

    def transform(self) -> TransformRecord:
        """The engine's record for a changed content (kind "llmlingua", omitted in tokens)."""
        return TransformRecord("llmlingua", self.tool_name, self.tokens_before, self.tokens_after,
                               self.hash, self.message_index, self.target,
                               max(0, self.tokens_before - self.tokens_after), "tokens")

    def summary(self) -> TransformSummary:
        return TransformSummary("llmlingua", self.tokens_before, self.tokens_after)


def code_rate(rate: float) -> float:
    """Code loses meaning faster than prose: keep half of what prose would drop."""
    return rate + (1.0 - rate) / 2


# What must stay verbatim inside prose: the things a model quotes back or acts on.
_FORCED_RE = re.compile(r"""
    !?\[[^\]\n]{1,200}\]\([^)\s]{1,500}\)           # markdown links and images
  | \b(?:https?|ftp|file)://[^\s<>"'`]+            # URLs
  | [\w.+-]+@[\w-]+(?:\.[\w-]+)+                    # e-mail addresses
  | `[^`\n]{1,200}`                                  # inline code
  | \b[A-Za-z]:\\[^\s<>"'`]+                         # Windows paths
  | (?:~|\.{1,2})?/?(?:[\w.@+-]+/)+[\w.@+-]*         # paths (one slash at least)
  | \b[A-Z][A-Z0-9]+-\d+\b                           # ticket and issue ids (OPS-1234)
  | [-+]?\$?\d(?:[\d,._:/-]*\d)?(?:%|[A-Za-z]{1,3}\b)? # numbers, versions, times, sizes
  | \b[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?:\(\))?       # dotted names (os.path.join)
  | \b[A-Za-z_]\w*\(\)                               # calls
  | \b\w*_\w+\b                                      # snake_case, __dunder__
  | \b[a-z]+[A-Z]\w*\b | \b[A-Z][a-z0-9]+[A-Z]\w*\b  # camelCase, PascalCase
  | \b[A-Z]{2,}[A-Z0-9]*\b                           # acronyms and CONSTANTS
  | \b\w*\d\w*\b                                     # words with digits (o200k, sha256)
""", re.VERBOSE)
_TRAILING = ".,;:!?)]}'\""
_WORD_RE = re.compile(r"[A-Za-z][\w-]{3,}")
_STOPWORDS = frozenset("""
    about above after again against also because been before being below between both could
    does doing down during each from further have having here into just more most other over
    same should some such than that their them then there these they this those through under
    until very were what when where which while will with would your yours please help want
    need like make sure tell show give find using used file files
""".split())


def forced_strings(text: str, query: str = "") -> list[str]:
    """The spans of `text` that must survive: identifiers, paths, numbers, URLs, query terms."""
    found: dict[str, None] = {}
    for m in _FORCED_RE.finditer(text):
        s = m.group(0)
        if "://" in s or "/" in s:
            s = s.rstrip(_TRAILING)
        if s:
            found.setdefault(s, None)
    for term in query_terms(query):
        for m in re.finditer(rf"(?<!\w){re.escape(term)}(?!\w)", text, re.IGNORECASE):
            found.setdefault(m.group(0), None)
    return list(found)


def query_terms(query: str) -> list[str]:
    """Distinct content words of the user's query (first MAX_QUERY_TERMS, in order)."""
    seen: dict[str, None] = {}
    for m in _WORD_RE.finditer(query):
        word = m.group(0).lower()
        if word not in _STOPWORDS:
            seen.setdefault(word, None)
        if len(seen) >= MAX_QUERY_TERMS:
            break
    return list(seen)


def _instruction_paragraphs(text: str) -> list[str]:
    """A pasted document's first and last paragraphs, where the user's own words usually are."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    if len(paragraphs) < 3:
        return []
    return [p for p in (paragraphs[0], paragraphs[-1]) if len(p) * 4 < len(text)]


def last_model_turn(req: ProviderRequest) -> int:
    """Index of the last assistant message (or Responses model item); -1 if there is none."""
    last = -1
    for i, item in enumerate(req.messages):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if item.get("role") == "assistant" or (type(kind) is str and (
                kind.endswith("_call") or kind == "reasoning")):
            last = i
    return last


@dataclass(frozen=True)
class _Candidate:
    target: str
    message_index: int
    tool_name: str | None
    text: str
    tokens: int
    content_kind: str
    rate: float
    force: tuple[str, ...]
    apply: Callable[[str], None]
    new: bool  # after the last model turn: never sent to the provider before


def _memo_key(model: str, rate: float, text: str) -> str:
    return hashlib.sha256(f"{model}\0{rate:.4f}\0{content_hash(text)}".encode()).hexdigest()[:32]


def _candidates(req: ProviderRequest, settings: Any, rate: float,
                protected: Callable[[ToolOutput], bool]) -> list[_Candidate]:
    out: list[_Candidate] = []
    model = req.model
    last_turn = last_model_turn(req)
    for tool_out in req.tool_outputs():
        if (tool_out.is_error or len(tool_out.text) * 4 < settings.min_tokens
                or has_marker(tool_out.text) or protected(tool_out)):
            continue  # exact text matters, or too small, or already a rendering
        tokens = count_text(tool_out.text, model)
        if tokens < settings.min_tokens:
            continue
        kind = detect_kind(tool_out.text)
        if kind.name not in PROSE_KINDS and kind.name != CODE_KIND:
            continue  # JSON, logs, diffs, search results, tables, HTML: their own compressors
        query = "\n".join(p for p in (tool_out.query_context, tool_out.tool_args) if p)
        out.append(_Candidate(
            "tool_result", tool_out.message_index, tool_out.tool_name, tool_out.text, tokens,
            str(kind), code_rate(rate) if kind.name == CODE_KIND else rate,
            tuple(forced_strings(tool_out.text, query)),
            lambda text, o=tool_out: req.replace_tool_output(o, text),
            tool_out.message_index > last_turn))
    floor = max(settings.min_tokens, USER_DOC_MIN_TOKENS)
    previous_user = ""
    for location, text in req.user_texts():
        # A location without a message index is a whole plain-string input: no history at all.
        has_index = len(location) > 1 and type(location[1]) is int
        index = location[1] if has_index else -1
        if len(text) * 4 >= floor and not has_marker(text):
            tokens = count_text(text, model)
            if tokens >= floor and detect_kind(text).name in PROSE_KINDS:
                force = forced_strings(text, previous_user) + _instruction_paragraphs(text)
                out.append(_Candidate(
                    "user_text", index, None, text, tokens, "text", rate, tuple(force),
                    lambda new, loc=location: req.replace_user_text(loc, new),
                    not has_index or index > last_turn))
        previous_user = text
    return out


def _policy(settings: Any) -> Callable[[ToolOutput], bool]:
    """The engine's policy: exact-output tools and commands, --protect-tool, --compress-tool."""
    def protected(out: ToolOutput) -> bool:
        return not tool_verdict(out.tool_name, out.tool_args,
                                protect_tools=settings.protect_tool,
                                compress_tools=settings.compress_tool).compress
    return protected


async def compress_prose(req: ProviderRequest, *, tenant: str, ccr: CCRStore,
                         service: LLMLinguaService, settings: Any, memo: Storage | None = None,
                         deadline_s: float | None = None,
                         protected: Callable[[ToolOutput], bool] | None = None) -> list[ProseRecord]:
    """Compress the request's prose in place; one record per content the pass considered.

    Run it before the compression engine (which leaves marked contents alone) and before
    context fitting. `memo` is where renderings are remembered for replay (default: the CCR
    store's own storage, so it is shared and outlives the process like the originals).
    `deadline_s` bounds the whole pass (default --compression-budget-ms); `protected` overrides
    the engine's exact-output policy.
    """
    if not settings.llmlingua:
        return []
    memo = memo if memo is not None else ccr.storage
    rate = float(settings.llmlingua_rate)
    budget = settings.compression_budget_ms / 1000 if deadline_s is None else deadline_s
    ends_at = time.monotonic() + budget
    model = req.model
    records: list[ProseRecord] = []
    for c in _candidates(req, settings, rate, protected or _policy(settings)):
        try:
            record = await _one(c, tenant, ccr, service, settings, memo, ends_at, model)
        except (CCRError, StorageError) as e:  # no stored original, no omission: leave it
            record = ProseRecord(c.target, c.message_index, c.tool_name, c.content_kind,
                                 f"store_error: {e}", c.tokens, c.tokens)
        if record is not None:
            records.append(record)
    return records


async def _one(c: _Candidate, tenant: str, ccr: CCRStore, service: LLMLinguaService,
               settings: Any, memo: Storage, ends_at: float, model: str | None) -> ProseRecord | None:
    ns = f"{MEMO_NS}:{tenant}"
    key = _memo_key(service.model, c.rate, c.text)
    digest = content_hash(c.text)
    remembered = memo.get(ns, key)
    if remembered is not None:
        rendering = remembered.decode("utf-8")
        # the marker must keep resolving as long as the rendering is sent
        ccr.ensure(tenant, c.text, kind=c.content_kind, tool_name=c.tool_name, full_hash=digest)
        c.apply(rendering)
        return ProseRecord(c.target, c.message_index, c.tool_name, c.content_kind, "replayed",
                           c.tokens, count_text(rendering, model), marker_hash(digest))
    if not c.new:
        return None  # went out as it was on an earlier turn: changing it now breaks the cache
    outcome = await service.compress_detailed(c.text, rate=c.rate, force_tokens=c.force,
                                              deadline_s=max(0.0, ends_at - time.monotonic()))
    if outcome.text is None:
        return ProseRecord(c.target, c.message_index, c.tool_name, c.content_kind,
                           outcome.reason, c.tokens, c.tokens, seconds=outcome.seconds)
    kept = count_text(outcome.text, model)
    rendering = outcome.text.rstrip("\n") + "\n" + make_marker(
        f"LLMLingua-2 kept {kept:,} of {c.tokens:,} tokens of this text, dropping words",
        marker_hash(digest))
    after = count_text(rendering, model)
    if after > c.tokens * (1.0 - settings.min_savings_ratio):
        return ProseRecord(c.target, c.message_index, c.tool_name, c.content_kind, "no_savings",
                           c.tokens, c.tokens, seconds=outcome.seconds)
    # order matters: the original is stored before anything can send the marker naming it
    ccr.ensure(tenant, c.text, kind=c.content_kind, tool_name=c.tool_name, full_hash=digest)
    memo.set(ns, key, rendering.encode("utf-8"), ttl=ccr.ttl or None)
    c.apply(rendering)
    return ProseRecord(c.target, c.message_index, c.tool_name, c.content_kind, "compressed",
                       c.tokens, after, marker_hash(digest), outcome.seconds)
