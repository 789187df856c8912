"""`compress()`: the optimiser as a library call on a messages list, no proxy involved.

    from headroom_core import compress
    result = compress(messages, provider="anthropic", model="claude-sonnet-4-5")
    result.messages        # a new list; the input is left untouched
    result.tokens_before, result.tokens_after, result.transforms

Originals omitted from the result are kept in a CCR store (an in-process one unless `ccr` is
given) under the hash each marker shows; `retrieve(hash)` returns them.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, fields
from typing import Any

from .ccr import CCREntry, CCRStore
from .compression.engine import CompressionConfig, CompressionReport, TransformRecord, compress_request
from .storage.memory import MemoryStorage
from .wire.common import Endpoint
from .wire.request import parse_request

_PROVIDERS = {
    "anthropic": Endpoint.ANTHROPIC_MESSAGES,
    "openai": Endpoint.OPENAI_CHAT,
    "openai-chat": Endpoint.OPENAI_CHAT,
    "openai_chat": Endpoint.OPENAI_CHAT,
    "openai-responses": Endpoint.OPENAI_RESPONSES,
    "openai_responses": Endpoint.OPENAI_RESPONSES,
    "responses": Endpoint.OPENAI_RESPONSES,
}
_CONFIG_FIELDS = {f.name for f in fields(CompressionConfig)}

_default_store: CCRStore | None = None
_store_lock = threading.Lock()


def default_store() -> CCRStore:
    """The in-process CCR store `compress()` uses when none is given."""
    global _default_store
    with _store_lock:
        if _default_store is None:
            _default_store = CCRStore(MemoryStorage())
        return _default_store


@dataclass(frozen=True)
class CompressResult:
    messages: list  # the compressed messages (Responses: the `input` items)
    tokens_before: int
    tokens_after: int
    transforms: tuple[TransformRecord, ...]
    report: CompressionReport

    @property
    def tokens_saved(self) -> int:
        return self.tokens_before - self.tokens_after


def compress(messages: list, *, provider: str, model: str, tools: list | None = None,
             system: Any = None, tenant: str = "library", ccr: CCRStore | None = None,
             **config: Any) -> CompressResult:
    """Compress tool outputs (and oversized pasted user text) in `messages`.

    `provider`: "anthropic", "openai" (Chat Completions) or "openai-responses". `config` takes
    the fields of `CompressionConfig` (min_tokens, min_savings, protect_tools, compress_tools,
    budget_ms, harder, user_min_tokens). Raises ValueError for an unknown provider or option.
    """
    endpoint = _PROVIDERS.get(provider.lower())
    if endpoint is None:
        raise ValueError(f"unknown provider {provider!r}; expected one of {sorted(_PROVIDERS)}")
    unknown = set(config) - _CONFIG_FIELDS
    if unknown:
        raise ValueError(f"unknown compression options: {sorted(unknown)}")
    for name in ("protect_tools", "compress_tools"):
        if name in config:
            config[name] = tuple(config[name])
    if not isinstance(messages, list):
        raise ValueError("messages must be a list")
    key = "input" if endpoint is Endpoint.OPENAI_RESPONSES else "messages"
    doc: dict[str, Any] = {"model": model, key: copy.deepcopy(messages)}
    if system is not None:
        if endpoint is Endpoint.ANTHROPIC_MESSAGES:
            doc["system"] = copy.deepcopy(system)
        elif endpoint is Endpoint.OPENAI_RESPONSES:
            doc["instructions"] = copy.deepcopy(system)
        else:
            doc[key].insert(0, {"role": "system", "content": copy.deepcopy(system)})
    if tools is not None:
        doc["tools"] = copy.deepcopy(tools)
    req = parse_request(doc, endpoint)
    if req is None:
        raise ValueError(f"messages are not a valid {provider} conversation")
    report = compress_request(req, tenant=tenant, ccr=ccr or default_store(),
                              config=CompressionConfig(**config))
    out = doc[key]
    if system is not None and endpoint is Endpoint.OPENAI_CHAT:
        out = out[1:]
    return CompressResult(out, report.tokens_before, report.tokens_after, report.transforms, report)


def retrieve(hash: str, query: str | None = None, *, tenant: str = "library",
             ccr: CCRStore | None = None) -> str | None:
    """The original a marker's hash names (or its parts matching `query`); None if unknown."""
    store = ccr or default_store()
    if query:
        return store.query(tenant, hash, query)
    entry: CCREntry | None = store.get(tenant, hash)
    return entry.text if entry else None
