"""Per-tenant rate limits: a request bucket (--rpm) and an input-token bucket (--tpm).

Each bucket holds its per-minute figure and refills continuously at figure/60 per second, so a
tenant may burst up to one minute's allowance and then proceeds at the steady rate. A request is
charged before it is forwarded (one request, our token count of the input); once the provider's
usage is known, `reconcile` returns or charges the difference. Buckets live in storage, so every
instance sharing it enforces one limit.

Two documented approximations: a request larger than the whole token allowance is charged as a
full bucket (it waits for a full minute's allowance instead of being refused forever), and a
reconciliation that finds the bucket emptier than the extra usage takes what is left (the bucket
never goes below zero).

Storage failure: fail open (admitted, reason "storage_unavailable") by default — the provider
still enforces its own limits, and an outage of the shared store must not stop all traffic.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from ..storage.base import Storage, StorageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Admission:
    allowed: bool
    retry_after: float  # seconds until the refused request would pass (0 when allowed)
    reason: str  # "" | "rpm" | "tpm" | "storage_unavailable"


def _ns(tenant: str) -> str:
    return f"rl:{tenant}"


class RateLimiter:
    """`rpm` / `tpm` of 0 mean unlimited; with both 0 every request is admitted untouched."""

    def __init__(self, storage: Storage, rpm: int, tpm: int, *, fail_open: bool = True) -> None:
        if rpm < 0 or tpm < 0:
            raise ValueError("rpm and tpm must not be negative")
        self.storage = storage
        self.rpm = rpm
        self.tpm = tpm
        self.fail_open = fail_open

    def admit(self, tenant: str, est_tokens: int, now: float) -> Admission:
        """Charge one request and `est_tokens` input tokens, or refuse without charging either."""
        try:
            return self._admit(tenant, est_tokens, now)
        except StorageError as e:
            log.warning("rate limiter storage unavailable (%s): %s", self._policy(), e)
            return Admission(self.fail_open, 0.0 if self.fail_open else 1.0, "storage_unavailable")

    def _admit(self, tenant: str, est_tokens: int, now: float) -> Admission:
        ns = _ns(tenant)
        if self.rpm:
            ok, wait = self.storage.token_bucket(ns, "req", self.rpm, self.rpm / 60.0, 1, now)
            if not ok:
                return Admission(False, wait, "rpm")
        if self.tpm:
            cost = min(max(0, est_tokens), self.tpm)
            ok, wait = self.storage.token_bucket(ns, "tok", self.tpm, self.tpm / 60.0, cost, now)
            if not ok:
                if self.rpm:  # the request was not forwarded: give its request token back
                    self.storage.token_bucket(ns, "req", self.rpm, self.rpm / 60.0, -1, now)
                return Admission(False, wait, "tpm")
        return Admission(True, 0.0, "")

    def reconcile(self, tenant: str, estimated: int, actual: int, now: float) -> None:
        """After the provider's usage: give back over-estimated tokens, charge the shortfall.

        `actual` is every input token the provider processed (uncached + cache read + cache
        write), summed over retrieval rounds. Never raises: a lost reconciliation only makes
        the next minute slightly looser or tighter.
        """
        if not self.tpm:
            return
        charged = min(max(0, estimated), self.tpm)
        diff = max(0, actual) - charged
        if diff == 0:
            return
        ns, rate = _ns(tenant), self.tpm / 60.0
        try:
            ok, wait = self.storage.token_bucket(ns, "tok", self.tpm, rate, diff, now)
            if not ok and diff > 0:
                # Take what the bucket still holds: level = diff - wait * rate.
                left = (diff - wait * rate) * (1 - 1e-9)  # float error must not make it refuse
                if left > 0:
                    self.storage.token_bucket(ns, "tok", self.tpm, rate, left, now)
        except StorageError as e:
            log.warning("rate limiter reconciliation skipped, storage unavailable: %s", e)

    def _policy(self) -> str:
        return "admitting (fail open)" if self.fail_open else "refusing (fail closed)"
