"""FailFast: after a store failure, calls fail at once for the cooldown, then reach the store again."""

from __future__ import annotations

import asyncio
import threading

import pytest

from headroom_core.spend.outage import FailFast, run_off_loop
from headroom_core.storage.base import StorageError
from headroom_core.storage.memory import MemoryStorage


class Flaky(MemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.broken = False
        self.calls = 0

    def get(self, ns, key):
        self.calls += 1
        if self.broken:
            raise StorageError("redis get failed: TimeoutError: Timeout reading from socket")
        return super().get(ns, key)


def test_skips_the_store_for_the_cooldown_after_a_failure():
    now = [100.0]
    inner = Flaky()
    store = FailFast(inner, cooldown_s=1.0, clock=lambda: now[0])
    store.set("ns", "k", b"v")
    assert store.get("ns", "k") == b"v" and not store.down
    inner.broken = True
    with pytest.raises(StorageError, match="Timeout reading"):
        store.get("ns", "k")
    assert store.down and inner.calls == 2
    with pytest.raises(StorageError, match="skipped for 1 s"):
        store.get("ns", "k")
    assert inner.calls == 2  # not called while down
    inner.broken = False
    now[0] += 1.01
    assert store.get("ns", "k") == b"v" and not store.down and inner.calls == 3


def test_every_operation_passes_through():
    store = FailFast(MemoryStorage())
    assert store.incr_float("b", "spend", 1.5, ttl=60) == 1.5
    assert store.token_bucket("rl", "req", 2, 0.0, 1, 1.0) == (True, 0.0)
    store.set("c", "k", b"x", ttl=60)
    store.delete("c", "k")
    assert store.get("c", "k") is None


async def test_run_off_loop_uses_another_thread():
    loop_thread = threading.get_ident()
    worker = await run_off_loop(threading.get_ident)
    assert worker != loop_thread
    assert await asyncio.gather(*(run_off_loop(pow, 2, i) for i in range(5))) == [1, 2, 4, 8, 16]
