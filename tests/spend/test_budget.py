"""Budgets: calendar periods, atomic reservations, settle/release, scopes, persistence, failures."""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest

from headroom_core.spend.budget import SLOT_S, BudgetGuard, Refusal, Reservation, period_bounds
from headroom_core.spend.pricing import Pricing
from headroom_core.storage.base import StorageError
from headroom_core.storage.disk import DiskStorage
from headroom_core.storage.memory import MemoryStorage

PRICING = Pricing.load(None, (3.0, 15.0))


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


class Clock:
    def __init__(self, start: str) -> None:
        self.now = ts(start)

    def __call__(self) -> float:
        return self.now

    def set(self, text: str) -> None:
        self.now = ts(text)


def guard(storage, clock, limit=5.0, period="monthly", scope="tenant", **kw) -> BudgetGuard:
    return BudgetGuard(storage, limit, period, scope, PRICING, clock=clock, **kw)


@pytest.mark.parametrize("period,at,start,end", [
    ("hourly", "2025-06-15T13:59:59", "2025-06-15T13:00:00", "2025-06-15T14:00:00"),
    ("daily", "2025-06-15T23:59:59", "2025-06-15T00:00:00", "2025-06-16T00:00:00"),
    ("monthly", "2025-02-14T12:00:00", "2025-02-01T00:00:00", "2025-03-01T00:00:00"),
    ("monthly", "2024-12-31T23:00:00", "2024-12-01T00:00:00", "2025-01-01T00:00:00"),
])
def test_period_bounds_follow_the_utc_calendar(period, at, start, end):
    s, e, _ = period_bounds(period, ts(at))
    assert (s.timestamp(), e.timestamp()) == (ts(start), ts(end))


def test_monthly_budget_sees_the_whole_month_and_resets_on_the_first():
    clock = Clock("2025-02-02T10:00:00")
    storage = MemoryStorage(clock=clock)  # TTLs run on the same clock: a 1-day TTL would show
    g = guard(storage, clock)
    g.settle(g.reserve("t", 0.1), 3.0)
    clock.set("2025-02-20T10:00:00")
    g.settle(g.reserve("t", 0.1), 2.5)
    clock.set("2025-02-27T10:00:00")
    refused = g.reserve("t", 0.1)
    assert isinstance(refused, Refusal) and refused.reason == "budget_exceeded"
    assert refused.spend_usd == pytest.approx(5.5) and refused.resets_at == "2025-03-01T00:00:00Z"
    assert refused.retry_after == pytest.approx(ts("2025-03-01T00:00:00") - clock.now)
    clock.set("2025-03-01T00:00:01")
    assert isinstance(g.reserve("t", 0.1), Reservation)
    assert g.snapshot("t")["spend_usd"] == 0.0


def test_reservations_cap_concurrent_requests_at_the_limit():
    clock = Clock("2025-06-01T12:00:00")
    g = guard(MemoryStorage(clock=clock), clock, limit=10.0)
    held = [g.reserve("t", 1.0) for _ in range(12)]
    assert [isinstance(r, Reservation) for r in held] == [True] * 10 + [False] * 2
    busy = held[-1]
    assert busy.reason == "budget_exceeded" and busy.retry_after < 60  # in flight, not spent
    g.release(held[0])
    assert isinstance(g.reserve("t", 1.0), Reservation)


def test_threads_never_reserve_beyond_the_limit(tmp_path):
    clock = Clock("2025-06-01T12:00:00")
    g = guard(DiskStorage(tmp_path / "b"), clock, limit=10.0)
    got: list = []
    lock = threading.Lock()

    def work():
        for _ in range(5):
            r = g.reserve("t", 0.75)
            with lock:
                got.append(r)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reserved = sum(r.amount_usd for r in got if isinstance(r, Reservation))
    assert reserved <= 10.0 + 1e-9
    assert reserved >= 10.0 - 0.75  # and the budget is used, not refused by mistake


def test_an_estimate_above_what_is_left_reserves_the_rest():
    clock = Clock("2025-06-01T12:00:00")
    g = guard(MemoryStorage(clock=clock), clock, limit=5.0)
    g.settle(g.reserve("t", 4.0), 4.0)
    r = g.reserve("t", 3.0)
    assert isinstance(r, Reservation) and r.amount_usd == pytest.approx(1.0)
    assert isinstance(g.reserve("t", 0.01), Refusal)
    g.settle(r, 2.5)  # the request cost more than was left: passes the limit by one request
    refused = g.reserve("t", 0.01)
    assert refused.spend_usd == pytest.approx(6.5) and refused.retry_after > 86400


def test_settle_charges_actual_cost_not_the_estimate():
    clock = Clock("2025-06-01T12:00:00")
    g = guard(MemoryStorage(clock=clock), clock, limit=5.0, period="daily")
    g.settle(g.reserve("t", 2.0), 0.25)
    snap = g.snapshot("t")
    assert snap["spend_usd"] == pytest.approx(0.25) and snap["reserved_usd"] == pytest.approx(0.0)
    assert snap["remaining_usd"] == pytest.approx(4.75)
    assert snap["period"] == "daily" and snap["resets_at"] == "2025-06-02T00:00:00Z"


def test_scopes_tenant_global_and_both():
    clock = Clock("2025-06-01T12:00:00")
    per_tenant = guard(MemoryStorage(clock=clock), clock, limit=5.0, scope="tenant")
    glob = guard(MemoryStorage(clock=clock), clock, limit=5.0, scope="global")
    both = guard(MemoryStorage(clock=clock), clock, limit=5.0, scope="both")
    for g in (per_tenant, glob, both):
        g.settle(g.reserve("a", 1.0), 3.0)
        g.settle(g.reserve("b", 1.0), 1.5)
    assert isinstance(per_tenant.reserve("c", 1.0), Reservation)  # c has spent nothing
    refused = glob.reserve("c", 1.0)
    assert isinstance(refused, Reservation) and refused.amount_usd == pytest.approx(0.5)
    blocked = glob.reserve("c", 0.1)
    assert isinstance(blocked, Refusal) and blocked.scope == "global"
    capped = both.reserve("b", 2.0)  # b's own budget leaves 3.5, the global one 0.5
    assert isinstance(capped, Reservation) and capped.amount_usd == pytest.approx(0.5)
    assert both.reserve("a", 0.1).scope == "global"  # a has 2 left of its own; the global is full
    snap = both.snapshot("a")
    assert snap["scope"] == "global" and snap["spend_usd"] == pytest.approx(4.5)


def test_stale_reservations_expire_with_their_slot():
    clock = Clock("2025-06-01T12:00:00")
    g = guard(MemoryStorage(clock=clock), clock, limit=1.0)
    assert isinstance(g.reserve("t", 1.0), Reservation)  # its process dies: never settled
    assert isinstance(g.reserve("t", 0.5), Refusal)
    clock.now += 2 * SLOT_S + 1
    assert isinstance(g.reserve("t", 0.5), Reservation)


def test_late_settle_of_an_expired_slot_does_not_go_negative():
    clock = Clock("2025-06-01T12:00:00")
    g = guard(MemoryStorage(clock=clock), clock, limit=1.0)
    r = g.reserve("t", 1.0)
    clock.now += 3 * SLOT_S
    g.settle(r, 0.5)
    assert g.snapshot("t")["reserved_usd"] == 0.0
    assert isinstance(g.reserve("t", 0.6), Reservation) and isinstance(g.reserve("t", 0.1), Refusal)


def test_spend_survives_reopening_disk_storage(tmp_path):
    clock = Clock("2025-06-10T12:00:00")
    s = DiskStorage(tmp_path / "budget")
    g = guard(s, clock)
    g.settle(g.reserve("t", 1.0), 4.5)
    s.close()
    g2 = guard(DiskStorage(tmp_path / "budget"), clock)
    assert g2.snapshot("t")["spend_usd"] == pytest.approx(4.5)


class Flaky(MemoryStorage):
    down = False

    def _check(self):
        if self.down:
            raise StorageError("store down")

    def get(self, ns, key):
        self._check()
        return super().get(ns, key)

    def incr_float(self, ns, key, amount, ttl=None):
        self._check()
        return super().incr_float(ns, key, amount, ttl)


def test_storage_down_fails_closed_and_unwritten_spend_is_kept():
    clock = Clock("2025-06-10T12:00:00")
    storage = Flaky(clock=clock)
    g = guard(storage, clock, limit=5.0)
    r = g.reserve("t", 1.0)
    storage.down = True
    refused = g.reserve("t", 1.0)
    assert isinstance(refused, Refusal) and refused.reason == "budget_unavailable"
    g.settle(r, 4.0)  # cannot be written now: kept in memory
    assert g.snapshot("t")["spend_usd"] is None
    storage.down = False
    assert g.snapshot("t")["spend_usd"] == pytest.approx(4.0)  # shown while still pending
    g.reserve("t", 0.1)  # flushes it
    assert float(storage.get("budget:t", "spend:monthly:2025-06")) == pytest.approx(4.0)


def test_storage_down_can_fail_open():
    clock = Clock("2025-06-10T12:00:00")
    storage = Flaky(clock=clock)
    storage.down = True
    g = guard(storage, clock, fail_open=True)
    r = g.reserve("t", 1.0)
    assert isinstance(r, Reservation) and r.amount_usd == 0.0
    storage.down = False
    g.settle(r, 1.5)
    assert g.snapshot("t")["spend_usd"] == pytest.approx(1.5)


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError):
        guard(MemoryStorage(), Clock("2025-01-01T00:00:00"), period="weekly")
    with pytest.raises(ValueError):
        guard(MemoryStorage(), Clock("2025-01-01T00:00:00"), scope="team")


def test_zero_estimate_is_refused_once_spend_reaches_the_limit():
    clock = Clock("2025-06-01T12:00:00")
    g = guard(MemoryStorage(clock=clock), clock, limit=1.0)
    assert isinstance(g.reserve("t", 0.0), Reservation)
    g.settle(g.reserve("t", 1.0), 1.0)
    assert isinstance(g.reserve("t", 0.0), Refusal)
