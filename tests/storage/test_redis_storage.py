"""Redis-specific behaviour: shared state between clients, restart, and an outage without hangs."""

from __future__ import annotations

import time

import pytest

from headroom_core.settings import Settings
from headroom_core.storage.base import StorageError
from headroom_core.storage.disk import DiskStorage
from headroom_core.storage.factory import open_storage

redis_store = pytest.importorskip("headroom_core.storage.redis_store")
RedisStorage = redis_store.RedisStorage


def test_two_clients_see_one_state(redis_server):
    a, b = RedisStorage(redis_server.url), RedisStorage(redis_server.url)
    a.incr_float("budget:global", "spend", 1.25)
    assert b.incr_float("budget:global", "spend", 1.0) == 2.25
    assert a.token_bucket("rl", "t", 2, 0.0, 1, 1.0)[0]
    assert b.token_bucket("rl", "t", 2, 0.0, 1, 1.0)[0]
    assert not a.token_bucket("rl", "t", 2, 0.0, 1, 1.0)[0]
    a.close(), b.close()


def test_state_survives_reconnect(redis_server):
    a = RedisStorage(redis_server.url)
    a.incr_float("budget:t", "spend", 4.0, ttl=3600)
    a.close()
    b = RedisStorage(redis_server.url)
    assert b.incr_float("budget:t", "spend", 1.0) == 5.0
    b.close()


def test_killed_server_gives_storage_error_quickly(redis_server):
    s = RedisStorage(redis_server.url, socket_timeout=0.5)
    s.set("ns", "k", b"v")  # a pooled connection now exists and will go stale
    redis_server.stop()
    for op in (lambda: s.get("ns", "k"),
               lambda: s.incr_float("ns", "c", 1.0),
               lambda: s.token_bucket("rl", "b", 1, 1, 1, 1.0)):
        started = time.monotonic()
        with pytest.raises(StorageError):
            op()
        assert time.monotonic() - started < 3.0


def test_frozen_server_gives_storage_error_not_a_hang(redis_server):
    s = RedisStorage(redis_server.url, socket_timeout=0.3)
    s.set("ns", "k", b"v")
    redis_server.pause()
    try:
        started = time.monotonic()
        with pytest.raises(StorageError) as info:
            s.incr_float("ns", "c", 1.0)
        assert time.monotonic() - started < 3.0
        assert "redis://" not in str(info.value)
    finally:
        redis_server.resume()
    # and it recovers once the server answers again
    assert s.incr_float("ns", "after", 1.0) == 1.0


def test_unreachable_url_and_ping(redis_server):
    s = RedisStorage(redis_server.url)
    s.ping()
    port = redis_server.port
    redis_server.stop()
    with pytest.raises(StorageError):
        RedisStorage(f"redis://127.0.0.1:{port}/0").ping()
    with pytest.raises(StorageError):
        RedisStorage("not-a-url")


def test_factory_picks_backend_and_separates_names(tmp_path, redis_server):
    disk = open_storage(Settings(data_dir=str(tmp_path)), "cache")
    assert isinstance(disk, DiskStorage) and disk.directory == tmp_path / "cache"
    disk.close()
    settings = Settings(data_dir=str(tmp_path), redis_url=redis_server.url)
    a, b = open_storage(settings, "cache"), open_storage(settings, "budget")
    assert isinstance(a, RedisStorage)
    a.set("ns", "k", b"cache")
    assert b.get("ns", "k") is None
    assert open_storage(settings, "cache").get("ns", "k") == b"cache"
    with pytest.raises(ValueError):
        open_storage(settings, "../escape")
