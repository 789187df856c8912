"""Storage on diskcache (SQLite + files) in the data directory: the default, embedded backend.

Survives restarts and is safe for several processes on one machine: the two read-modify-write
updates (`incr_float`, `token_bucket`) run inside `Cache.transact()`, which takes SQLite's
write lock (BEGIN IMMEDIATE), so processes and threads serialise on it.

Size: diskcache evicts least-recently-stored entries once `size_limit` bytes are exceeded. Open
one `DiskStorage` per feature (`storage.factory.open_storage` does) so a full response cache can
never evict budget spend.
"""

from __future__ import annotations

import math
import sqlite3
import time
from pathlib import Path
from typing import Callable, TypeVar

import diskcache

from .base import Storage, StorageError

T = TypeVar("T")

# diskcache's SQLite busy timeout is 60 s by default; a writer holds the lock for microseconds,
# so a wait this long means something is wrong and the caller should hear about it. For the
# same reason transactions are not retried (diskcache's retry=True would wait forever on a
# process that froze while holding the lock).
_LOCK_TIMEOUT_S = 5.0
# A token bucket left alone refills to full; after that its key can vanish with no change in
# meaning (a missing bucket reads as full). The margin covers clocks that differ a little.
_BUCKET_IDLE_MARGIN_S = 60.0
_SEP = "\x1f"  # never appears in a namespace, so (ns, key) pairs cannot collide


def _k(ns: str, key: str) -> str:
    return ns + _SEP + key


def bucket_idle_ttl(capacity: float, refill_per_s: float) -> float | None:
    """Seconds after which an untouched bucket is full again (None: it never refills)."""
    if refill_per_s <= 0:
        return None
    return capacity / refill_per_s + _BUCKET_IDLE_MARGIN_S


def bucket_step(level: float | None, last: float | None, capacity: float, refill_per_s: float,
                cost: float, now: float) -> tuple[bool, float, float, float]:
    """The token-bucket rule shared by the local backends: (allowed, retry_after, level, last).

    `last` only moves forward, so two instances whose clocks differ slightly do not refill
    the same interval twice.
    """
    if level is None or last is None:
        level, last = capacity, now
    level = min(capacity, level + max(0.0, now - last) * refill_per_s)
    last = max(last, now)
    if cost <= level or cost < 0:
        return True, 0.0, min(capacity, level - cost), last
    wait = (cost - level) / refill_per_s if refill_per_s > 0 else math.inf
    return False, wait, level, last


class DiskStorage(Storage):
    """A `Storage` in one directory; any number of processes may open the same directory."""

    def __init__(self, directory: str | Path, size_limit: int = 1 << 30, *,
                 lock_timeout: float = _LOCK_TIMEOUT_S) -> None:
        self.directory = Path(directory).expanduser()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._cache = diskcache.Cache(str(self.directory), timeout=lock_timeout,
                                          size_limit=size_limit)
        except (OSError, sqlite3.Error, diskcache.Timeout) as e:
            raise StorageError(f"cannot open disk storage at {self.directory}: {e}") from e

    def _run(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except (OSError, sqlite3.Error, diskcache.Timeout) as e:
            raise StorageError(f"disk storage {what} failed: {e}") from e

    def get(self, ns: str, key: str) -> bytes | None:
        return self._run("get", lambda: self._cache.get(_k(ns, key)))

    def set(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        self._run("set", lambda: self._cache.set(_k(ns, key), bytes(value), expire=ttl))

    def delete(self, ns: str, key: str) -> None:
        self._run("delete", lambda: self._cache.delete(_k(ns, key)))

    def incr_float(self, ns: str, key: str, amount: float, ttl: float | None = None) -> float:
        k = _k(ns, key)

        def update() -> float:
            with self._cache.transact():
                current, expire_at = self._cache.get(k, expire_time=True)
                if current is None:
                    value, expire = amount, ttl
                else:
                    value = float(current) + amount
                    # Keep the expiry set at creation: a period counter must not live longer
                    # because it was charged again.
                    expire = None if expire_at is None else max(expire_at - time.time(), 0.001)
                self._cache.set(k, repr(value).encode(), expire=expire)
                return value

        return self._run("incr_float", update)

    def token_bucket(self, ns: str, key: str, capacity: float, refill_per_s: float,
                     cost: float, now: float) -> tuple[bool, float]:
        k = _k(ns, key)

        def update() -> tuple[bool, float]:
            with self._cache.transact():
                raw = self._cache.get(k)
                level = last = None
                if raw is not None:
                    a, b = raw.decode().split(",")
                    level, last = float(a), float(b)
                allowed, wait, level, last = bucket_step(level, last, capacity, refill_per_s,
                                                         cost, now)
                self._cache.set(k, f"{level!r},{last!r}".encode(),
                                expire=bucket_idle_ttl(capacity, refill_per_s))
                return allowed, wait

        return self._run("token_bucket", update)

    def close(self) -> None:
        self._cache.close()
