"""In-memory storage for tests and for `compress()` used as a library without a data dir."""

from __future__ import annotations

import threading
import time

from .base import Storage


class MemoryStorage(Storage):
    def __init__(self, clock=time.time) -> None:
        self._data: dict[tuple[str, str], tuple[bytes, float | None]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def _live(self, k: tuple[str, str]) -> bytes | None:
        item = self._data.get(k)
        if item is None:
            return None
        value, expires = item
        if expires is not None and expires <= self._clock():
            del self._data[k]
            return None
        return value

    def get(self, ns: str, key: str) -> bytes | None:
        with self._lock:
            return self._live((ns, key))

    def set(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        with self._lock:
            self._data[(ns, key)] = (bytes(value), None if ttl is None else self._clock() + ttl)

    def delete(self, ns: str, key: str) -> None:
        with self._lock:
            self._data.pop((ns, key), None)

    def incr_float(self, ns: str, key: str, amount: float, ttl: float | None = None) -> float:
        with self._lock:
            k = (ns, key)
            current = self._live(k)
            value = (float(current) if current is not None else 0.0) + amount
            expires = self._data[k][1] if current is not None else (
                None if ttl is None else self._clock() + ttl)
            self._data[k] = (repr(value).encode(), expires)
            return value

    def token_bucket(self, ns: str, key: str, capacity: float, refill_per_s: float,
                     cost: float, now: float) -> tuple[bool, float]:
        with self._lock:
            k = (ns, key)
            raw = self._live(k)
            if raw is None:
                level, last = capacity, now
            else:
                a, b = raw.decode().split(",")
                level, last = float(a), float(b)
            level = min(capacity, level + max(0.0, now - last) * refill_per_s)
            if cost <= level or cost < 0:
                level = min(capacity, level - cost)
                self._data[k] = (f"{level!r},{now!r}".encode(), None)
                return True, 0.0
            self._data[k] = (f"{level!r},{now!r}".encode(), None)
            wait = (cost - level) / refill_per_s if refill_per_s > 0 else float("inf")
            return False, wait

    def close(self) -> None:
        with self._lock:
            self._data.clear()
