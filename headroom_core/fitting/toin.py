"""TOIN (tool output intelligence): what headroom has learned about each kind of tool output.

Per tenant (or across tenants with `--toin-global`), per tool name and output-structure
signature (signatures.py), it counts compressions and retrievals (whole or by query) and which
fields the model asked for. That feeds two consumers: the context-fitting score (`importance`: outputs the model
keeps retrieving are expensive to drop) and the compressors (`hints`: fields to keep).

Scoring sees our renderings, not the originals TOIN learned from, and a rendering's own
signature is not its original's. So TOIN also remembers, per tenant, the pattern behind each
marker hash (`o:<hash>`, written when the compression is recorded); `origin()` answers it from
an in-process memo — a re-sent history costs a dict lookup per rendering, never a signature.

Hints obey DESIGN.md rule 2: they may shape only a tool result never rendered before. The first
`hints()` call for a content hash stores the hints it returned (empty ones too) and every later
call for that hash returns the same, so a result renders identically on every turn, after a
restart and on every instance sharing the storage — whatever TOIN learns meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..compression.markers import HASH_LEN
from ..storage.base import Storage
from .signatures import output_signature, queried_fields

__all__ = ["Toin", "ToinView", "ToinHints", "PatternStats", "OriginalStore", "output_signature",
           "queried_fields"]

GLOBAL_SCOPE = "global"
RENDER_TTL_S = 30 * 86400  # a rendering's hints must outlive every conversation that sent it
MAX_FIELDS = 40  # per pattern: the most asked-for fields are kept, the tail forgotten
MAX_PATTERNS = 1000  # per scope, for top_patterns
HINT_FIELDS = 8  # fields handed to a compressor
_IMPORTANCE_CACHE_S = 5.0  # scoring asks per request; stats move slowly
ORIGIN_MEMO = 50_000  # marker hash -> pattern, per process (content-addressed: never stale)
ORIGIN_RETRY_S = 30.0  # an unknown hash is asked again after this (another instance may learn it)
TENANTS_NS = "toin:_tenants"  # tenants with patterns, for /stats (a tenant hash has no "_")
MAX_TENANTS = 50


@dataclass(frozen=True)
class ToinHints:
    """What a compressor may use for a new tool result: the fields the model asked for before."""

    fields: tuple[str, ...] = ()
    retrieval_rate: float = 0.0  # retrievals per compression of this pattern, capped at 1

    @property
    def empty(self) -> bool:
        return not self.fields and self.retrieval_rate == 0.0


class OriginalStore(Protocol):
    """What `origin()` falls back on for a hash TOIN never saw compressed: the CCR store,
    whose entries carry `.text`, `.tool_name` (None for dropped turns, pasted text)."""

    def get(self, tenant: str, hash: str) -> Any: ...


@dataclass(frozen=True)
class PatternStats:
    tool_name: str
    signature: str
    compressions: int
    retrievals: int
    query_retrievals: int
    tokens_saved: int
    top_fields: tuple[str, ...]
    importance: float


def _pattern_id(tool_name: str, signature: str) -> str:
    return hashlib.sha1(f"{tool_name}\x00{signature}".encode("utf-8", "replace")).hexdigest()[:16]


class Toin:
    """TOIN over a Storage backend (namespace `toin:<tenant>`, or `toin:global` for the stats)."""

    def __init__(self, storage: Storage, *, global_scope: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._storage = storage
        self._global = global_scope
        self._clock = clock
        self._lock = threading.Lock()
        self._importance: dict[tuple[str, str], tuple[float, float]] = {}
        self._tenants_noted: set[str] = set()
        # (tenant, marker hash) -> ((tool, signature) or None, when a miss was noted)
        self._origins: "OrderedDict[tuple[str, str], tuple[tuple[str, str] | None, float]]" = \
            OrderedDict()

    def _stats_ns(self, tenant: str) -> str:
        return f"toin:{GLOBAL_SCOPE if self._global else tenant}"

    def _count(self, ns: str, key: str) -> float:
        raw = self._storage.get(ns, key)
        try:
            return float(raw) if raw is not None else 0.0
        except ValueError:
            return 0.0

    def _json(self, ns: str, key: str, default: Any) -> Any:
        raw = self._storage.get(ns, key)
        if raw is None:
            return default
        try:
            return json.loads(raw)
        except ValueError:
            return default

    def _note_tenant(self, tenant: str) -> None:
        """Remember (once per process) that `tenant` has patterns of its own, for /stats."""
        if self._global or tenant in self._tenants_noted:
            return
        with self._lock:
            self._tenants_noted.add(tenant)
        listed = self._json(TENANTS_NS, "list", [])
        if tenant in listed:
            listed.remove(tenant)
        self._storage.set(TENANTS_NS, "list", json.dumps((listed + [tenant])[-MAX_TENANTS:]).encode())

    def tenants(self) -> list[str]:
        """Tenants (hashes) with patterns of their own, most recently active last."""
        listed = self._json(TENANTS_NS, "list", [])
        return [t for t in listed if isinstance(t, str)] if isinstance(listed, list) else []

    def _register(self, ns: str, pid: str, tool_name: str, signature: str, tenant: str) -> None:
        self._note_tenant(tenant)
        if self._storage.get(ns, f"p:{pid}:meta") is not None:
            return
        self._storage.set(ns, f"p:{pid}:meta",
                          json.dumps({"tool": tool_name, "sig": signature}).encode())
        index = self._json(ns, "index", [])
        if pid not in index:
            index = (index + [pid])[-MAX_PATTERNS:]
            self._storage.set(ns, "index", json.dumps(index).encode())

    def record_compression(self, tenant: str, tool_name: str, signature: str, *,
                           tokens_before: int = 0, tokens_after: int = 0,
                           content_hash: str | None = None) -> None:
        """A tool output of this pattern was compressed.

        `content_hash` is the marker hash its rendering names: the output is counted once,
        however many requests carry it, and the rendering scores with this pattern (`origin`).
        """
        ns, pid = self._stats_ns(tenant), _pattern_id(tool_name, signature)
        if content_hash is not None:
            self.remember_origin(tenant, content_hash, tool_name, signature)
            seen = f"s:{pid}:{content_hash}"
            if self._storage.get(ns, seen) is not None:
                return
            self._storage.set(ns, seen, b"1", ttl=RENDER_TTL_S)
        self._register(ns, pid, tool_name, signature, tenant)
        self._storage.incr_float(ns, f"p:{pid}:c", 1.0)
        saved = max(0, tokens_before - tokens_after)
        if saved:
            self._storage.incr_float(ns, f"p:{pid}:s", float(saved))

    def record_retrieval(self, tenant: str, tool_name: str, signature: str, *,
                         query: str | None = None, original: str | None = None) -> None:
        """The model retrieved an original of this pattern (whole, or the part matching `query`)."""
        ns, pid = self._stats_ns(tenant), _pattern_id(tool_name, signature)
        self._register(ns, pid, tool_name, signature, tenant)
        # The fields and the query count are written before the retrieval count, so a reader
        # that sees the retrieval counted also sees what it asked for.
        if query and query.strip():
            counts = Counter(self._json(ns, f"p:{pid}:f", {}))
            counts.update(queried_fields(query, original))
            top = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_FIELDS])
            self._storage.set(ns, f"p:{pid}:f", json.dumps(top).encode())
            self._storage.incr_float(ns, f"p:{pid}:q", 1.0)
        self._storage.incr_float(ns, f"p:{pid}:r", 1.0)
        with self._lock:
            self._importance.pop((ns, pid), None)

    def importance(self, tenant: str, tool_name: str, signature: str) -> float:
        """In [0,1]: how often the model came back for outputs of this pattern once compressed."""
        ns, pid = self._stats_ns(tenant), _pattern_id(tool_name, signature)
        now = self._clock()
        with self._lock:
            hit = self._importance.get((ns, pid))
        if hit is not None and now - hit[1] < _IMPORTANCE_CACHE_S:
            return hit[0]
        value = self._importance_of(ns, pid)
        with self._lock:
            self._importance[(ns, pid)] = (value, now)
        return value

    def _importance_of(self, ns: str, pid: str) -> float:
        retrievals = self._count(ns, f"p:{pid}:r")
        if retrievals <= 0:
            return 0.0
        return min(1.0, retrievals / (self._count(ns, f"p:{pid}:c") + 1.0))

    # --- renderings -> their originals' patterns ---------------------------------------------

    def _memo_origin(self, key: tuple[str, str], pattern: tuple[str, str] | None) -> None:
        with self._lock:
            self._origins[key] = (pattern, self._clock())
            self._origins.move_to_end(key)
            while len(self._origins) > ORIGIN_MEMO:
                self._origins.popitem(last=False)

    def remember_origin(self, tenant: str, marker_hash: str, tool_name: str,
                        signature: str) -> tuple[str, str]:
        """Renderings whose markers name `marker_hash` stand for an output of this pattern.
        Kept per tenant (the hash names the tenant's CCR entry), as long as hints are."""
        key, pattern = (tenant, marker_hash[:HASH_LEN].lower()), (tool_name, signature)
        self._storage.set(f"toin:{tenant}", f"o:{key[1]}", json.dumps(list(pattern)).encode(),
                          ttl=RENDER_TTL_S)
        self._memo_origin(key, pattern)
        return pattern

    def origin(self, tenant: str, marker_hash: str,
               originals: OriginalStore | None = None) -> tuple[str, str] | None:
        """(tool name, signature) of the original a rendering's marker names, or None.

        Answered from the process memo, else TOIN's storage, else — for an output compressed
        without TOIN seeing it (compress-first, TOIN data older than this map) — by signing
        the original in `originals` once and remembering it. An unknown hash is asked again
        only after ORIGIN_RETRY_S.
        """
        key = (tenant, marker_hash[:HASH_LEN].lower())
        with self._lock:
            hit = self._origins.get(key)
            if hit is not None:
                self._origins.move_to_end(key)
        if hit is not None and (hit[0] is not None or self._clock() - hit[1] < ORIGIN_RETRY_S):
            return hit[0]
        stored = self._json(f"toin:{tenant}", f"o:{key[1]}", None)
        if isinstance(stored, list) and len(stored) == 2 and all(isinstance(v, str) for v in stored):
            pattern = (stored[0], stored[1])
            self._memo_origin(key, pattern)
            return pattern
        entry = originals.get(tenant, key[1]) if originals is not None else None
        if entry is not None and entry.tool_name:
            return self.remember_origin(tenant, key[1], entry.tool_name, output_signature(entry.text))
        self._memo_origin(key, None)
        return None

    def hints(self, tenant: str, tool_name: str, signature: str, content_hash: str) -> ToinHints:
        """Hints for rendering the tool result whose content hash is given — stable per hash."""
        render_ns, key = f"toin:{tenant}", f"h:{content_hash}"
        stored = self._json(render_ns, key, None)
        if isinstance(stored, dict):
            return ToinHints(tuple(stored.get("fields", ())), float(stored.get("rate", 0.0)))
        ns, pid = self._stats_ns(tenant), _pattern_id(tool_name, signature)
        fields = tuple(list(self._json(ns, f"p:{pid}:f", {}))[:HINT_FIELDS])
        hints = ToinHints(fields, self._importance_of(ns, pid))
        self._storage.set(render_ns, key, json.dumps(
            {"fields": list(hints.fields), "rate": hints.retrieval_rate}).encode(), ttl=RENDER_TTL_S)
        return hints

    def top_patterns(self, tenant: str, n: int = 10) -> list[PatternStats]:
        """The patterns with most activity, for /stats (tool names and signatures, no content)."""
        ns = self._stats_ns(tenant)
        out: list[PatternStats] = []
        for pid in self._json(ns, "index", []):
            meta = self._json(ns, f"p:{pid}:meta", None)
            if not isinstance(meta, dict):
                continue
            out.append(PatternStats(
                tool_name=meta.get("tool", ""), signature=meta.get("sig", ""),
                compressions=int(self._count(ns, f"p:{pid}:c")),
                retrievals=int(self._count(ns, f"p:{pid}:r")),
                query_retrievals=int(self._count(ns, f"p:{pid}:q")),
                tokens_saved=int(self._count(ns, f"p:{pid}:s")),
                top_fields=tuple(list(self._json(ns, f"p:{pid}:f", {}))[:5]),
                importance=self._importance_of(ns, pid)))
        out.sort(key=lambda p: (-(p.retrievals + p.compressions), p.tool_name, p.signature))
        return out[:n]

    @classmethod
    def from_settings(cls, storage: Storage, settings: Any) -> "Toin":
        return cls(storage, global_scope=bool(settings.toin_global))

    def view(self, tenant: str, originals: OriginalStore | None = None) -> "ToinView":
        return ToinView(self, tenant, originals)


@dataclass(frozen=True)
class ToinView:
    """TOIN bound to one tenant: what scoring and the compressors call. `originals` (the CCR
    store) resolves renderings TOIN never saw compressed."""

    toin: Toin
    tenant: str
    originals: OriginalStore | None = None

    def importance(self, tool_name: str, signature: str) -> float:
        return self.toin.importance(self.tenant, tool_name, signature)

    def rendering_pattern(self, marker_hash: str) -> tuple[str, str] | None:
        """The (tool name, signature) of the original behind a rendering's marker hash."""
        return self.toin.origin(self.tenant, marker_hash, self.originals)

    def hints(self, tool_name: str, signature: str, content_hash: str) -> ToinHints:
        return self.toin.hints(self.tenant, tool_name, signature, content_hash)

    def record_compression(self, tool_name: str, signature: str, *, tokens_before: int = 0,
                           tokens_after: int = 0, content_hash: str | None = None) -> None:
        self.toin.record_compression(self.tenant, tool_name, signature, tokens_before=tokens_before,
                                     tokens_after=tokens_after, content_hash=content_hash)

    def record_retrieval(self, tool_name: str, signature: str, *, query: str | None = None,
                         original: str | None = None) -> None:
        self.toin.record_retrieval(self.tenant, tool_name, signature, query=query, original=original)
