"""Several instances on one Redis enforce one budget and one rate limit; an outage falls back as documented."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from headroom_core.spend.budget import BudgetGuard, Refusal, Reservation
from headroom_core.spend.pricing import Pricing
from headroom_core.spend.ratelimit import RateLimiter
from headroom_core.spend.response_cache import CachedResponse, ResponseCache

redis_store = pytest.importorskip("headroom_core.storage.redis_store")
RedisStorage = redis_store.RedisStorage
PRICING = Pricing.load(None, (3.0, 15.0))
T0 = 1_750_000_000.0


def test_burst_split_across_two_clients_respects_both_limits(redis_server):
    stores = [RedisStorage(redis_server.url), RedisStorage(redis_server.url)]
    limiters = [RateLimiter(s, rpm=10, tpm=0) for s in stores]
    guards = [BudgetGuard(s, 1.0, "daily", "global", PRICING) for s in stores]
    admitted = sum(limiters[i % 2].admit("t", 100, T0).allowed for i in range(30))
    assert admitted == 10
    held = [guards[i % 2].reserve(f"tenant{i}", 0.1) for i in range(30)]
    ok = [r for r in held if isinstance(r, Reservation)]
    assert sum(r.amount_usd for r in ok) <= 1.0 + 1e-9 and len(ok) == 10
    for i, r in enumerate(ok):
        guards[i % 2].settle(r, 0.1)
    assert guards[1].snapshot("x")["spend_usd"] == pytest.approx(1.0)


_WORKER = r"""
import json, os, sys, time
from headroom_core.storage.redis_store import RedisStorage
from headroom_core.spend.budget import BudgetGuard, Reservation
from headroom_core.spend.pricing import Pricing
from headroom_core.spend.ratelimit import RateLimiter
url, go, t0 = sys.argv[1], sys.argv[2], float(sys.argv[3])
store = RedisStorage(url)
rl = RateLimiter(store, rpm=40, tpm=0)
budget = BudgetGuard(store, 2.0, "monthly", "global", Pricing.load(None, (3.0, 15.0)))
while not os.path.exists(go):
    time.sleep(0.005)
admitted = spent = 0
for i in range(60):
    admitted += rl.admit("tenant", 1, t0).allowed
    r = budget.reserve("tenant", 0.05)
    if isinstance(r, Reservation):
        budget.settle(r, r.amount_usd)
        spent += 1
print(json.dumps({"admitted": admitted, "spent": spent}))
"""


def test_two_processes_share_one_budget_and_one_rate_limit(redis_server, tmp_path):
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, redis_server.url, str(go), str(T0)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    time.sleep(0.5)
    go.touch()
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sum(r["admitted"] for r in results) == 40  # no refill: `now` is fixed
    snap = BudgetGuard(RedisStorage(redis_server.url), 2.0, "monthly", "global", PRICING).snapshot("x")
    assert snap["spend_usd"] <= 2.0 + 1e-9
    assert snap["spend_usd"] >= 2.0 - 0.1  # used up, not refused by mistake
    assert sum(r["spent"] for r in results) <= 40


def test_budget_spend_survives_an_instance_restart(redis_server):
    g = BudgetGuard(RedisStorage(redis_server.url), 5.0, "monthly", "tenant", PRICING)
    g.settle(g.reserve("t", 1.0), 3.25)
    fresh = BudgetGuard(RedisStorage(redis_server.url), 5.0, "monthly", "tenant", PRICING)
    assert fresh.snapshot("t")["spend_usd"] == pytest.approx(3.25)


def test_redis_going_away_falls_back_without_hanging(redis_server):
    store = RedisStorage(redis_server.url, socket_timeout=0.3)
    rl = RateLimiter(store, rpm=5, tpm=0)
    budget = BudgetGuard(store, 5.0, "daily", "tenant", PRICING)
    cache = ResponseCache(store, ttl=60, max_entries=10)
    cache.store("k", CachedResponse(200, (), b"{}", time.time()))
    assert rl.admit("t", 1, T0).allowed and isinstance(budget.reserve("t", 0.1), Reservation)
    redis_server.pause()  # the worst case: connections open, nothing answers
    try:
        started = time.monotonic()
        admission = rl.admit("t", 1, T0)
        refusal = budget.reserve("t", 0.1)
        hit = cache.lookup("k")
        elapsed = time.monotonic() - started
    finally:
        redis_server.resume()
    assert admission.allowed and admission.reason == "storage_unavailable"  # fail open
    assert isinstance(refusal, Refusal) and refusal.reason == "budget_unavailable"  # fail closed
    assert hit is None  # a miss
    assert elapsed < 10.0
