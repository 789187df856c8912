"""One set of semantic tests for every Storage backend: memory (the reference), disk, Redis."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from headroom_core.storage.base import Storage, StorageError
from headroom_core.storage.disk import DiskStorage
from headroom_core.storage.memory import MemoryStorage

BACKENDS = ["memory", "disk", "redis"]


def _open(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Storage:
    if kind == "memory":
        return MemoryStorage()
    if kind == "disk":
        return DiskStorage(tmp_path / "store")
    from headroom_core.storage.redis_store import RedisStorage

    server = request.getfixturevalue("redis_server")
    return RedisStorage(server.url)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    s = _open(request.param, tmp_path, request)
    yield s
    s.close()


def test_get_set_delete_and_namespaces(store):
    assert store.get("ns", "k") is None
    store.set("ns", "k", b"\x00value\xff")
    store.set("other", "k", b"x")
    assert store.get("ns", "k") == b"\x00value\xff"
    assert store.get("other", "k") == b"x"
    # (ns, key) pairs must not collide through a separator in either part
    store.set("a:b", "c", b"1")
    store.set("a", "b:c", b"2")
    assert store.get("a:b", "c") == b"1" and store.get("a", "b:c") == b"2"
    store.delete("ns", "k")
    store.delete("ns", "missing")
    assert store.get("ns", "k") is None
    assert store.get("other", "k") == b"x"


def test_set_ttl_expires(store):
    store.set("ns", "short", b"v", ttl=0.2)
    store.set("ns", "long", b"v", ttl=60)
    assert store.get("ns", "short") == b"v"
    time.sleep(0.35)
    assert store.get("ns", "short") is None
    assert store.get("ns", "long") == b"v"


def test_incr_float_creates_adds_and_reads_back(store):
    assert store.incr_float("ns", "c", 0.25) == 0.25
    assert store.incr_float("ns", "c", 1.5) == 1.75
    assert store.incr_float("ns", "c", -0.75) == 1.0
    assert float(store.get("ns", "c")) == 1.0


def test_incr_float_ttl_set_only_on_creation(store):
    store.incr_float("ns", "period", 1.0, ttl=0.3)
    time.sleep(0.1)
    # a later charge with a long TTL must not extend the counter's life
    assert store.incr_float("ns", "period", 1.0, ttl=60) == 2.0
    time.sleep(0.35)
    assert store.get("ns", "period") is None
    # a counter created without TTL does not gain one later
    store.incr_float("ns", "forever", 1.0)
    store.incr_float("ns", "forever", 1.0, ttl=0.1)
    time.sleep(0.2)
    assert store.get("ns", "forever") is not None


def test_token_bucket_take_refill_and_return(store):
    t0 = 1_000_000.0
    for _ in range(3):
        assert store.token_bucket("rl", "b", 3, 1.0, 1, t0) == (True, 0.0)
    allowed, wait = store.token_bucket("rl", "b", 3, 1.0, 1, t0)
    assert not allowed and wait == pytest.approx(1.0)
    allowed, wait = store.token_bucket("rl", "b", 3, 1.0, 1, t0 + 0.5)
    assert not allowed and wait == pytest.approx(0.5)
    assert store.token_bucket("rl", "b", 3, 1.0, 1, t0 + 1.0)[0]
    # a negative cost gives tokens back, never beyond capacity
    assert store.token_bucket("rl", "b", 3, 1.0, -10, t0 + 1.0)[0]
    for _ in range(3):
        assert store.token_bucket("rl", "b", 3, 1.0, 1, t0 + 1.0)[0]
    assert not store.token_bucket("rl", "b", 3, 1.0, 1, t0 + 1.0)[0]


def test_token_bucket_cost_above_capacity_and_no_refill(store):
    allowed, wait = store.token_bucket("rl", "big", 5, 1.0, 8, 10.0)
    assert not allowed and wait == pytest.approx(3.0)
    assert store.token_bucket("rl", "frozen", 1, 0.0, 1, 10.0)[0]
    allowed, wait = store.token_bucket("rl", "frozen", 1, 0.0, 1, 99.0)
    assert not allowed and math.isinf(wait)


def test_concurrent_threads_are_atomic(store):
    per_thread, threads = 25, 8
    taken: list[bool] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(per_thread):
            store.incr_float("ns", "n", 1.0)
            ok, _ = store.token_bucket("rl", "t", 50, 0.0, 1, 5.0)
            with lock:
                taken.append(ok)

    ts = [threading.Thread(target=work) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert float(store.get("ns", "n")) == per_thread * threads
    assert sum(taken) == 50


_WORKER = r"""
import json, os, sys, time
kind, where, go = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "disk":
    from headroom_core.storage.disk import DiskStorage
    s = DiskStorage(where)
else:
    from headroom_core.storage.redis_store import RedisStorage
    s = RedisStorage(where)
while not os.path.exists(go):
    time.sleep(0.005)
allowed = 0
for _ in range(100):
    s.incr_float("ns", "shared", 0.5)
    allowed += s.token_bucket("rl", "shared", 80, 0.0, 1, 5.0)[0]
print(json.dumps({"allowed": allowed}))
"""


@pytest.mark.parametrize("kind", ["disk", "redis"])
def test_two_processes_share_counters_and_buckets(kind, tmp_path, request):
    where = str(tmp_path / "store") if kind == "disk" else request.getfixturevalue("redis_server").url
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, kind, where, str(go)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.3)  # both interpreters up and polling before the start signal
    go.touch()
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r["allowed"] for r in results) == 80
    s = _open(kind, tmp_path, request)
    try:
        assert float(s.get("ns", "shared")) == 100.0
    finally:
        s.close()


def test_disk_state_survives_reopen(tmp_path):
    s = DiskStorage(tmp_path / "d")
    s.set("ns", "k", b"v")
    s.incr_float("budget:x", "spend", 2.5, ttl=3600)
    s.token_bucket("rl", "b", 2, 0.0, 2, 1.0)
    s.close()
    s = DiskStorage(tmp_path / "d")
    assert s.get("ns", "k") == b"v"
    assert s.incr_float("budget:x", "spend", 0.5) == 3.0
    assert not s.token_bucket("rl", "b", 2, 0.0, 1, 2.0)[0]
    s.close()


def test_disk_unwritable_directory_is_a_storage_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StorageError):
        DiskStorage(blocker / "store")


_LOCK_HOLDER = r"""
import sys, time
import diskcache
cache = diskcache.Cache(sys.argv[1])
with cache.transact():
    cache.set("x", b"1")
    open(sys.argv[2], "w").close()
    time.sleep(30)
"""


def test_disk_lock_held_by_a_stuck_process_is_a_storage_error_not_a_hang(tmp_path):
    s = DiskStorage(tmp_path / "d", lock_timeout=0.3)
    held = tmp_path / "held"
    proc = subprocess.Popen([sys.executable, "-c", _LOCK_HOLDER, str(tmp_path / "d"), str(held)])
    try:
        deadline = time.monotonic() + 30
        while not held.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(StorageError):
            s.incr_float("ns", "c", 1.0)
        assert time.monotonic() - started < 5.0
    finally:
        proc.kill()
        proc.wait()
    assert s.incr_float("ns", "c", 1.0) == 1.0  # the lock died with its holder


def test_zero_ttl_is_already_expired(store):
    store.set("ns", "k", b"old")
    store.set("ns", "k", b"v", ttl=0)
    time.sleep(0.01)
    assert store.get("ns", "k") is None
