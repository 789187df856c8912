"""Token-bucket rate limits per tenant: requests and input tokens, charged first, reconciled later."""

from __future__ import annotations

import pytest

from headroom_core.spend.ratelimit import Admission, RateLimiter
from headroom_core.storage.base import StorageError
from headroom_core.storage.disk import DiskStorage
from headroom_core.storage.memory import MemoryStorage

T0 = 1_700_000_000.0


@pytest.fixture(params=["memory", "disk"])
def storage(request, tmp_path):
    s = MemoryStorage() if request.param == "memory" else DiskStorage(tmp_path / "rl")
    yield s
    s.close()


def test_rpm_burst_then_steady_rate(storage):
    rl = RateLimiter(storage, rpm=3, tpm=0)
    assert [rl.admit("t", 10, T0).allowed for _ in range(3)] == [True] * 3
    refused = rl.admit("t", 10, T0)
    assert refused == Admission(False, pytest.approx(20.0), "rpm")
    assert not rl.admit("t", 10, T0 + 19).allowed
    assert rl.admit("t", 10, T0 + 20.01).allowed


def test_tenants_have_separate_buckets(storage):
    rl = RateLimiter(storage, rpm=1, tpm=0)
    assert rl.admit("a", 1, T0).allowed
    assert not rl.admit("a", 1, T0).allowed
    assert rl.admit("b", 1, T0).allowed


def test_tpm_refusal_does_not_spend_a_request(storage):
    rl = RateLimiter(storage, rpm=2, tpm=1000)
    assert rl.admit("t", 600, T0).allowed
    refused = rl.admit("t", 600, T0)
    assert not refused.allowed and refused.reason == "tpm"
    assert refused.retry_after == pytest.approx(200 / (1000 / 60))
    assert rl.admit("t", 400, T0).allowed  # the refused request gave its request token back
    assert rl.admit("t", 0, T0).reason == "rpm"


def test_request_larger_than_the_allowance_waits_for_a_full_bucket(storage):
    rl = RateLimiter(storage, rpm=0, tpm=1000)
    assert rl.admit("t", 5000, T0).allowed  # charged as the whole allowance
    refused = rl.admit("t", 5000, T0 + 30)
    assert not refused.allowed and refused.retry_after == pytest.approx(30.0)
    assert rl.admit("t", 5000, T0 + 60).allowed


def test_reconcile_returns_and_charges_the_difference(storage):
    rl = RateLimiter(storage, rpm=0, tpm=1000)
    assert rl.admit("t", 800, T0).allowed
    rl.reconcile("t", estimated=800, actual=100, now=T0)  # 700 back
    assert rl.admit("t", 900, T0).allowed
    rl.reconcile("t", estimated=900, actual=950, now=T0)  # 50 more: bucket at 0 now
    refused = rl.admit("t", 60, T0 + 0.6)  # 0.6 s refills 10 tokens
    assert not refused.allowed and refused.retry_after == pytest.approx(50 / (1000 / 60), rel=1e-3)


def test_reconcile_shortfall_larger_than_the_bucket_empties_it(storage):
    rl = RateLimiter(storage, rpm=0, tpm=600)
    assert rl.admit("t", 100, T0).allowed
    rl.reconcile("t", estimated=100, actual=5000, now=T0)
    assert not rl.admit("t", 1, T0).allowed
    assert rl.admit("t", 10, T0 + 1.0).allowed  # refilled from zero, not from a debt


def test_unlimited_touches_nothing():
    class NoStorage(MemoryStorage):
        def token_bucket(self, *a, **k):
            raise AssertionError("storage used although no limit is set")

    rl = RateLimiter(NoStorage(), rpm=0, tpm=0)
    assert rl.admit("t", 10**9, T0) == Admission(True, 0.0, "")
    rl.reconcile("t", 1, 10**9, T0)


class _Down(MemoryStorage):
    def token_bucket(self, *a, **k):
        raise StorageError("redis down")


def test_storage_failure_fails_open_by_default_or_closed_on_request():
    assert RateLimiter(_Down(), rpm=1, tpm=1).admit("t", 1, T0) == Admission(True, 0.0, "storage_unavailable")
    closed = RateLimiter(_Down(), rpm=1, tpm=1, fail_open=False).admit("t", 1, T0)
    assert not closed.allowed and closed.reason == "storage_unavailable" and closed.retry_after > 0
    RateLimiter(_Down(), rpm=1, tpm=1).reconcile("t", 1, 5, T0)  # never raises


def test_negative_limits_are_rejected():
    with pytest.raises(ValueError):
        RateLimiter(MemoryStorage(), rpm=-1, tpm=0)
