"""CCR (compress, cache, retrieve): every original a marker points to, content-addressed and
namespaced by tenant, behind the one `Storage` interface (diskcache, Redis or memory).

The key is a prefix of the original's sha256 (`HASH_LEN` hex characters, the form markers show)
in the namespace `ccr:<tenant>`, so one tenant can never read another's originals. Entries
expire after `ttl` seconds; originals larger than `max_entry_bytes` are refused, and the engine
then leaves that output uncompressed (nothing is ever omitted without a stored original).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from .bm25 import rank
from .compression.jsonscan import largest_array
from .compression.markers import HASH_LEN
from .storage.base import Storage, StorageError

_HEX = frozenset("0123456789abcdef")


class CCRError(RuntimeError):
    """An original could not be stored (too large, or the backend failed)."""


@dataclass(frozen=True)
class CCREntry:
    hash: str  # full sha256 hex of the original
    text: str
    kind: str
    tool_name: str | None
    created: float


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def marker_hash(full_hash: str) -> str:
    return full_hash[:HASH_LEN]


def _namespace(tenant: str) -> str:
    if not tenant or "\x1f" in tenant:
        raise ValueError("a CCR tenant must be a non-empty string")
    return "ccr:" + tenant


class CCRStore:
    def __init__(self, storage: Storage, ttl: int = 86400, max_entry_bytes: int | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.storage = storage
        self.ttl = ttl
        self.max_entry_bytes = max_entry_bytes
        self._clock = clock
        self._recent: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, tenant: str, original: str, *, kind: str, tool_name: str | None = None,
            full_hash: str | None = None) -> str:
        """Store `original`; return its full sha256 hex (markers show `marker_hash` of it).

        Raises CCRError when the original is too large or the backend fails.
        """
        data = original.encode("utf-8", "surrogatepass")
        if self.max_entry_bytes is not None and len(data) > self.max_entry_bytes:
            raise CCRError(f"original of {len(data)} bytes exceeds the CCR entry cap of {self.max_entry_bytes}")
        digest = full_hash or hashlib.sha256(data).hexdigest()
        header = json.dumps({"hash": digest, "kind": kind, "tool": tool_name, "created": self._clock()},
                            separators=(",", ":")).encode()
        ns, key = _namespace(tenant), marker_hash(digest)
        try:
            # Text and metadata under two keys, so a large original is never copied to prepend
            # a header; the text is written first, so metadata never names a missing text.
            self.storage.set(ns, key, data, ttl=self.ttl)
            self.storage.set(ns, key + ":meta", header, ttl=self.ttl)
        except StorageError as e:
            raise CCRError(f"CCR store failed: {e}") from e
        return digest

    def ensure(self, tenant: str, original: str, *, kind: str, tool_name: str | None = None,
               full_hash: str | None = None) -> str:
        """`put`, skipped when this store put the same original for the tenant less than half
        a TTL ago (a re-sent history then costs no write)."""
        digest = full_hash or content_hash(original)
        key = (tenant, digest)
        now = time.monotonic()
        with self._lock:
            last = self._recent.get(key)
            if last is not None and now - last < self.ttl / 2:
                self._recent.move_to_end(key)
                return digest
        self.put(tenant, original, kind=kind, tool_name=tool_name, full_hash=digest)
        with self._lock:
            self._recent[key] = now
            self._recent.move_to_end(key)
            while len(self._recent) > 4096:
                self._recent.popitem(last=False)
        return digest

    def get(self, tenant: str, hash: str) -> CCREntry | None:
        """The entry a marker's hash (or the full hash, or any prefix of ≥ HASH_LEN) names."""
        h = hash.strip().lower()
        if len(h) < HASH_LEN or not set(h) <= _HEX:
            return None
        ns, key = _namespace(tenant), h[:HASH_LEN]
        try:
            header = self.storage.get(ns, key + ":meta")
            data = self.storage.get(ns, key) if header is not None else None
        except StorageError:
            return None
        if header is None or data is None:
            return None
        meta = json.loads(header)
        if not meta["hash"].startswith(h):
            return None
        return CCREntry(meta["hash"], data.decode("utf-8", "surrogatepass"), meta["kind"],
                        meta.get("tool"), float(meta["created"]))

    def query(self, tenant: str, hash: str, query: str, limit: int = 20) -> str | None:
        """The parts of the original that match `query`, best `limit` by BM25, in original order.

        Lines are shown as `L<number>: <line>`; for JSON originals the items of the longest
        array are ranked instead and shown as `[<index>] <item>`. None if the hash is unknown.
        """
        entry = self.get(tenant, hash)
        if entry is None:
            return None
        items = largest_array(entry.text) if entry.kind == "json" else None
        if items:
            docs, unit, label = items, "items", lambda i: f"[{i}] "
        else:
            docs, unit, label = entry.text.split("\n"), "lines", lambda i: f"L{i + 1}: "
        hits = sorted(i for i, _ in rank(docs, query, limit))
        if not hits:
            return f"[headroom: no {unit} of the original ({len(docs)} {unit}) match {query!r}]"
        head = f"[headroom: {len(hits)} best-matching of {len(docs)} {unit} for {query!r}, in original order]"
        return "\n".join([head] + [label(i) + docs[i] for i in hits])
