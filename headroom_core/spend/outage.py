"""The spend guard during a storage outage: stop calling a store known to be down, and keep
remote-store calls off the event loop.

A frozen Redis makes every call wait for its socket timeout (0.5 s). Admission and a cache
lookup make several calls per request, so without this an outage costs every request seconds,
and, on the event loop, stalls every other flow of the process with it. `FailFast` turns the
calls after a failure into an immediate `StorageError` for `cooldown_s`, after which the next
call tries the store again; each feature then applies its documented fallback at once (cache:
miss, rate limit: admit, budget: refuse with 503). `run_off_loop` gives calls to a remote store
a small thread pool of their own, so the loop never waits on a socket.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from ..storage.base import Storage, StorageError

T = TypeVar("T")

COOLDOWN_S = 1.0
_POOL_SIZE = 4
_pool: ThreadPoolExecutor | None = None


class FailFast:
    """A `Storage` that skips its backend for `cooldown_s` after the backend raised
    `StorageError`. Thread-safe enough by construction: the only shared state is one float
    and one string, and a race only means one call more or less reaches the backend."""

    def __init__(self, inner: Storage, cooldown_s: float = COOLDOWN_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._down_until = 0.0
        self._last_error = ""

    @property
    def down(self) -> bool:
        """True while calls are skipped (the backend failed less than cooldown_s ago)."""
        return self._clock() < self._down_until

    def _call(self, fn: Callable[[], T]) -> T:
        if self._down_until and self.down:
            raise StorageError(f"{self._last_error} (store skipped for {self.cooldown_s:g} s "
                               "after a failure)")
        try:
            result = fn()
        except StorageError as e:
            self._last_error = str(e)
            self._down_until = self._clock() + self.cooldown_s
            raise
        self._down_until = 0.0
        return result

    def get(self, ns: str, key: str) -> bytes | None:
        return self._call(lambda: self.inner.get(ns, key))

    def set(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None:
        self._call(lambda: self.inner.set(ns, key, value, ttl))

    def delete(self, ns: str, key: str) -> None:
        self._call(lambda: self.inner.delete(ns, key))

    def incr_float(self, ns: str, key: str, amount: float, ttl: float | None = None) -> float:
        return self._call(lambda: self.inner.incr_float(ns, key, amount, ttl))

    def token_bucket(self, ns: str, key: str, capacity: float, refill_per_s: float,
                     cost: float, now: float) -> tuple[bool, float]:
        return self._call(lambda: self.inner.token_bucket(ns, key, capacity, refill_per_s,
                                                          cost, now))

    def close(self) -> None:
        """The backend belongs to whoever opened it (services.Services closes it)."""


async def run_off_loop(fn: Callable[..., T], *args: Any) -> T:
    """Run `fn` in the spend guard's own threads (never starved by other executor users)."""
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="headroom-spend")
    return await asyncio.get_running_loop().run_in_executor(_pool, fn, *args)
