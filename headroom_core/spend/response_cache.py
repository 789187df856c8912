"""Exact response cache: identical requests (same tenant, endpoint, whole body) get the stored answer.

The key covers everything that can change an answer — model, system, messages or input, tools,
tool_choice, sampling parameters, thinking, response format, metadata — and ignores only what
cannot: `cache_control` markers (prompt-cache placement, at any depth) and the stream flag
(`stream`, `stream_options`), so a streamed request hits an answer first fetched unstreamed and
the other way round. Only final answers are stored (`is_cacheable`).

Bounding: entries carry the TTL; the count is kept to `max_entries` by a ring of slots in
storage. Each store takes the next sequence number and evicts the entry that held its slot
`max_entries` stores ago (FIFO). A hit on an entry older than half the ring re-stores it under a
new number, which makes the policy an approximate LRU (a "second chance" for entries in use).
Concurrent stores may briefly leave a few entries more than the bound.

Storage failures never fail a request: lookup reports a miss and store does nothing (fail open).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..jsonfmt import JsonNumber
from ..storage.base import Storage, StorageError
from ..wire.common import Endpoint

log = logging.getLogger(__name__)

NS = "cache"  # the tenant is inside the key's hash, so one namespace serves every tenant
_META = "cache-meta"
_IGNORED_TOP_LEVEL = frozenset({"stream", "stream_options"})
_KEY_VERSION = b"headroom-cache-v2"
_SEQ_REFRESH_S = 1.0  # how stale this process's view of the ring position may be

# What a successful final answer looks like, per format.
_ANTHROPIC_FINAL = frozenset({"end_turn", "stop_sequence", "max_tokens"})
_CHAT_FINAL = frozenset({"stop", "length"})
# Responses output items that are answers, not requests for the client to act on.
_RESPONSES_FINAL_ITEMS = frozenset({"message", "reasoning", "web_search_call", "file_search_call"})


@dataclass(frozen=True)
class CachedResponse:
    """A stored answer: `body` is the final JSON body (the non-streamed form), decoded."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    created: float


def _feed(h: Any, value: Any) -> None:
    """Hash `value` canonically: sorted keys, no cache_control, numbers in one spelling (1 == 1.0).

    Each item is tagged and length-prefixed, so no two different documents feed the same bytes.
    Hashing the leaves directly is ~5x faster than json.dumps of a canonical copy on large
    bodies (which are mostly long strings).
    """
    if isinstance(value, dict):
        keys = sorted(str(k) for k in value if k != "cache_control")
        h.update(b"{%d;" % len(keys))
        for k in keys:
            _feed(h, k)
            _feed(h, value[k])
    elif isinstance(value, (list, tuple)):
        h.update(b"[%d;" % len(value))
        for v in value:
            _feed(h, v)
    elif value is None or isinstance(value, bool):
        h.update(b"n;" if value is None else b"t;" if value else b"f;")
    elif isinstance(value, (JsonNumber, float)):
        f = float(value)
        if not math.isfinite(f):
            text = str.__str__(value) if isinstance(value, JsonNumber) else repr(f)
        elif f.is_integer() and abs(f) < 2**53:
            text = str(int(f))
        else:
            text = repr(f)
        h.update(b"#%s;" % text.encode())
    elif isinstance(value, int):
        h.update(b"#%d;" % value)
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
        h.update(b"s%d;" % len(data))
        h.update(data)
    else:
        raise TypeError(f"cannot key a request holding {type(value).__name__}")


def cache_key(tenant: str, endpoint: Endpoint | str, doc: Mapping[str, Any]) -> str:
    """sha256 over tenant, endpoint and the canonical request (see the module docstring)."""
    h = hashlib.sha256(_KEY_VERSION)
    _feed(h, tenant)
    _feed(h, getattr(endpoint, "value", str(endpoint)))
    _feed(h, {k: v for k, v in doc.items() if k not in _IGNORED_TOP_LEVEL})
    return h.hexdigest()


def is_cacheable(endpoint: Endpoint | str, status: int, doc: Mapping[str, Any]) -> bool:
    """True for a successful final answer; never tool calls, errors, refusals or partial output.

    `doc` is the response body (non-streamed form, or a StreamAssembler's result). Anthropic
    `max_tokens` and chat `length` stops count as final: the key includes max_tokens, so the
    same request would be cut at the same place again.
    """
    if status != 200 or not isinstance(doc, Mapping) or doc.get("error"):
        return False
    ep = getattr(endpoint, "value", str(endpoint))
    if ep == Endpoint.ANTHROPIC_MESSAGES.value:
        content = doc.get("content")
        return (doc.get("type") == "message" and doc.get("stop_reason") in _ANTHROPIC_FINAL
                and isinstance(content, list)
                and not any(isinstance(b, Mapping) and b.get("type") == "tool_use" for b in content))
    if ep == Endpoint.OPENAI_CHAT.value:
        choices = doc.get("choices")
        if doc.get("object") != "chat.completion" or not isinstance(choices, list) or not choices:
            return False
        for c in choices:
            msg = c.get("message") if isinstance(c, Mapping) else None
            if (not isinstance(msg, Mapping) or c.get("finish_reason") not in _CHAT_FINAL
                    or msg.get("tool_calls") or msg.get("function_call") or msg.get("refusal")):
                return False
        return True
    if ep == Endpoint.OPENAI_RESPONSES.value:
        output = doc.get("output")
        return (doc.get("object") == "response" and doc.get("status") == "completed"
                and isinstance(output, list) and bool(output)
                and all(isinstance(i, Mapping) and i.get("type") in _RESPONSES_FINAL_ITEMS
                        for i in output))
    return False


def cacheable_headers(headers: Any) -> tuple[tuple[str, str], ...]:
    """The upstream headers worth replaying: only the content type.

    Request ids, rate-limit counters, dates and lengths describe the original exchange, not the
    replay; the caller adds `x-headroom-cache: hit` and its own framing.
    """
    items = headers.items() if hasattr(headers, "items") else headers
    return tuple((k.lower(), v) for k, v in items if k.lower() == "content-type")


def _encode(resp: CachedResponse, seq: int) -> bytes:
    head = {"s": resp.status, "h": [list(p) for p in resp.headers], "c": resp.created, "q": seq}
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + resp.body


def _decode(raw: bytes) -> tuple[CachedResponse, int]:
    head_raw, _, body = raw.partition(b"\n")
    head = json.loads(head_raw)
    headers = tuple((str(k), str(v)) for k, v in head["h"])
    return CachedResponse(int(head["s"]), headers, body, float(head["c"])), int(head["q"])


class ResponseCache:
    """Stored final answers by `cache_key`, bounded by TTL (0: none) and `max_entries`."""

    def __init__(self, storage: Storage, ttl: int, max_entries: int, clock=time.time) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.storage = storage
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        # The ring's newest sequence number as this process last saw it, and when it read it:
        # the age test on a hit uses this instead of a storage round trip every time.
        self._seq_seen = 0
        self._seq_read_at = float("-inf")

    def lookup(self, key: str) -> CachedResponse | None:
        try:
            raw = self.storage.get(NS, key)
            if raw is None:
                return None
            resp, seq = _decode(raw)
            if self.ttl and self._clock() - resp.created > self.ttl:
                return None  # a backend that keeps items past their TTL still never serves them
            self._refresh_if_old(key, resp, seq)
            return resp
        except StorageError as e:
            log.warning("response cache lookup failed, treating as a miss: %s", e)
        except (ValueError, KeyError, TypeError) as e:
            log.warning("response cache entry %s unreadable, ignoring it: %s", key[:12], e)
        return None

    def store(self, key: str, resp: CachedResponse) -> None:
        try:
            self._put(key, resp)
        except StorageError as e:
            log.warning("response cache store failed, answer not cached: %s", e)

    def _remaining_ttl(self, resp: CachedResponse) -> float | None:
        if not self.ttl:
            return None
        return max(0.001, self.ttl - (self._clock() - resp.created))

    def _put(self, key: str, resp: CachedResponse) -> None:
        ttl = self._remaining_ttl(resp)
        seq = int(self.storage.incr_float(_META, "seq", 1.0))
        self._seq_seen = max(self._seq_seen, seq)
        slot = str(seq % self.max_entries)
        previous = self.storage.get(_META, "slot:" + slot)
        self.storage.set(NS, key, _encode(resp, seq), ttl=ttl)
        self.storage.set(_META, "slot:" + slot, f"{seq}:{key}".encode(), ttl=ttl)
        if previous:
            old_seq, _, old_key = previous.decode().partition(":")
            if old_key != key:
                self._evict(old_key, int(old_seq))

    def _evict(self, key: str, slot_seq: int) -> None:
        raw = self.storage.get(NS, key)
        # Evict only if the entry still belongs to this slot: a refreshed entry moved on.
        if raw is not None and _decode(raw)[1] == slot_seq:
            self.storage.delete(NS, key)

    def _refresh_if_old(self, key: str, resp: CachedResponse, seq: int) -> None:
        now = time.monotonic()
        if now - self._seq_read_at >= _SEQ_REFRESH_S:  # other instances store too
            current = self.storage.get(_META, "seq")
            self._seq_read_at = now
            if current is not None:
                self._seq_seen = max(self._seq_seen, int(float(current)))
        if self._seq_seen - seq > self.max_entries // 2:
            self._put(key, resp)
