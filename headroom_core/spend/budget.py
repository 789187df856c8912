"""Spend budgets per tenant and/or globally, per UTC calendar hour, day or month.

Spend is a counter in storage whose key names the period it belongs to
(`spend:monthly:2025-06`), so a monthly budget sees the whole month and a new period starts at
zero with nothing to reset; the key's TTL only clears it away once its period is over.

Concurrency: before a request goes out it `reserve`s its estimated cost. A reservation is
admitted only while spend + every outstanding reservation stays within the limit, so requests
in flight together cannot jointly overshoot. A request whose estimate exceeds what is left still
goes out while something is left, reserving the rest: the budget is used to its end, and the
limit is passed by at most about one request. `settle` adds the real cost (from the provider's
usage, every round) and drops the reservation; `release` drops it when nothing was spent.

Reservations are counted in 15-minute slots that expire, so a process that dies between reserve
and settle cannot block a budget for more than half an hour.

Storage failure: fail closed by default (refused with reason "budget_unavailable": spend cannot
be checked, and budgets exist to protect money). A settle that cannot be written is kept in
memory and added on the next successful call.
"""

from __future__ import annotations

import calendar
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from ..storage.base import Storage, StorageError
from .pricing import Pricing

log = logging.getLogger(__name__)

PERIODS = ("hourly", "daily", "monthly")
SCOPES = ("tenant", "global", "both")
SLOT_S = 900  # reservation slot length; a reservation counts for 1–2 slots
_GRACE_S = 2 * 86400  # a period's counter outlives its period by this much (for late readers)
_EPS = 1e-9
_BUSY_RETRY_S = 5.0  # retry-after when only reservations (not spend) fill the budget


@dataclass(frozen=True)
class Reservation:
    tenant: str
    amount_usd: float  # what was reserved in each scope (0 when storage was down, fail-open)
    namespaces: tuple[str, ...]  # storage namespaces holding the reservation
    slot: int


@dataclass(frozen=True)
class Refusal:
    reason: str  # "budget_exceeded" | "budget_unavailable"
    scope: str  # "tenant" | "global" | "" (storage down)
    spend_usd: float
    limit_usd: float
    retry_after: float
    resets_at: str  # ISO 8601, UTC
    message: str


def period_bounds(period: str, now: float) -> tuple[datetime, datetime, str]:
    """(start, end, label) of the UTC calendar period holding `now`."""
    t = datetime.fromtimestamp(now, tz=timezone.utc)
    if period == "hourly":
        start = t.replace(minute=0, second=0, microsecond=0)
        return start, datetime.fromtimestamp(start.timestamp() + 3600, tz=timezone.utc), \
            start.strftime("%Y-%m-%dT%H")
    if period == "daily":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, datetime.fromtimestamp(start.timestamp() + 86400, tz=timezone.utc), \
            start.strftime("%Y-%m-%d")
    if period == "monthly":
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        days = calendar.monthrange(t.year, t.month)[1]
        return start, datetime.fromtimestamp(start.timestamp() + days * 86400, tz=timezone.utc), \
            start.strftime("%Y-%m")
    raise ValueError(f"budget period must be one of {', '.join(PERIODS)}, got {period!r}")


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _float(raw: bytes | None) -> float:
    return float(raw) if raw is not None else 0.0


class BudgetGuard:
    """Reserve before forwarding, settle after; one instance per process, storage shared."""

    def __init__(self, storage: Storage, limit_usd: float, period: str, scope: str,
                 pricing: Pricing, *, fail_open: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        period_bounds(period, 0.0)  # validates
        if scope not in SCOPES:
            raise ValueError(f"budget scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        if limit_usd < 0:
            raise ValueError("budget limit must not be negative")
        self.storage, self.limit, self.period, self.scope = storage, limit_usd, period, scope
        self.pricing, self.fail_open, self._clock = pricing, fail_open, clock
        self._unsettled: dict[str, float] = {}  # spend not yet written (storage was down)
        self._lock = threading.Lock()

    def _namespaces(self, tenant: str) -> list[tuple[str, str]]:
        out = []
        if self.scope in ("tenant", "both"):
            out.append(("tenant", f"budget:{tenant}"))
        if self.scope in ("global", "both"):
            out.append(("global", "budget:global"))
        return out

    def _spend_key(self, now: float) -> tuple[str, datetime, datetime]:
        start, end, label = period_bounds(self.period, now)
        return f"spend:{self.period}:{label}", start, end

    def estimate(self, model: str, input_tokens: int, max_output_tokens: int | None) -> float:
        return self.pricing.estimate(model, input_tokens, max_output_tokens)

    def _figures(self, ns: str, spend_key: str, slot: int) -> tuple[float, float]:
        spend = _float(self.storage.get(ns, spend_key))
        reserved = sum(_float(self.storage.get(ns, f"reserved:{s}")) for s in (slot, slot - 1))
        return spend, max(0.0, reserved)

    def reserve(self, tenant: str, est_usd: float) -> Reservation | Refusal:
        """Hold `est_usd` (or what is left, if less) in every scope, or refuse.

        Optimistic: add first, then look. Each request reads after its own addition, so the
        last of any group of concurrent requests sees all the others' holdings (at least as
        large as they end up) and trims its own to fit: the holdings together never pass the
        limit. Three storage round trips per scope, one more when trimming.
        """
        now = self._clock()
        slot = int(now // SLOT_S)
        spend_key, _, end = self._spend_key(now)
        key = f"reserved:{slot}"
        try:
            self._flush_unsettled(now)
            amount = max(0.0, est_usd)
            held: list[tuple[str, float]] = []
            for name, ns in self._namespaces(tenant):
                current = self.storage.incr_float(ns, key, amount, ttl=3 * SLOT_S)
                held.append((ns, amount))
                spend = _float(self.storage.get(ns, spend_key))
                reserved = max(0.0, current + _float(self.storage.get(ns, f"reserved:{slot - 1}")))
                over = spend + reserved - self.limit
                if over > _EPS or spend >= self.limit - _EPS:
                    room = amount - over if spend < self.limit - _EPS else 0.0
                    if room <= _EPS:
                        for h_ns, h_amount in held:
                            self.storage.incr_float(h_ns, key, -h_amount, ttl=3 * SLOT_S)
                        return self._refusal(name, spend, reserved - amount, now, end)
                    self.storage.incr_float(ns, key, room - amount, ttl=3 * SLOT_S)
                    held[-1] = (ns, room)
                    amount = room
            for h_ns, h_amount in held[:-1]:  # an earlier scope may hold more than a later allowed
                if h_amount > amount + _EPS:
                    self.storage.incr_float(h_ns, key, amount - h_amount, ttl=3 * SLOT_S)
            return Reservation(tenant, amount, tuple(ns for ns, _ in held), slot)
        except StorageError as e:
            if self.fail_open:
                log.warning("budget storage unavailable, admitting unchecked (fail open): %s", e)
                return Reservation(tenant, 0.0, (), slot)
            log.warning("budget storage unavailable, refusing (fail closed): %s", e)
            return Refusal("budget_unavailable", "", 0.0, self.limit, _BUSY_RETRY_S, _iso(end),
                           "budget cannot be checked: headroom's state store is unavailable")

    def _refusal(self, scope: str, spend: float, reserved: float, now: float,
                 end: datetime) -> Refusal:
        exhausted = spend >= self.limit - _EPS
        wait = end.timestamp() - now if exhausted else _BUSY_RETRY_S
        what = "this tenant's" if scope == "tenant" else "the global"
        detail = "" if exhausted else f" with ${reserved:.4f} reserved by requests in flight"
        message = (f"{what} {self.period} budget of ${self.limit:.2f} is used up: ${spend:.4f} "
                   f"spent{detail}; it resets at {_iso(end)}")
        return Refusal("budget_exceeded", scope, spend, self.limit, max(1.0, wait), _iso(end), message)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Add the request's real cost to every scope and drop its reservation. Never raises."""
        now = self._clock()
        spend_key, _, end = self._spend_key(now)
        ttl = end.timestamp() - now + _GRACE_S
        namespaces = reservation.namespaces or tuple(ns for _, ns in self._namespaces(reservation.tenant))
        for ns in namespaces:
            try:
                # Spend first, then the reservation: a reader in between over-counts, never under.
                if actual_usd:
                    self.storage.incr_float(ns, spend_key, actual_usd, ttl=ttl)
            except StorageError as e:
                log.warning("budget spend of $%.6f not written yet, kept in memory: %s", actual_usd, e)
                with self._lock:
                    self._unsettled[ns] = self._unsettled.get(ns, 0.0) + actual_usd
        self._drop(reservation, now)

    def release(self, reservation: Reservation) -> None:
        """Drop a reservation without spend (the request never reached the provider)."""
        self._drop(reservation, self._clock())

    def _drop(self, reservation: Reservation, now: float) -> None:
        # A slot older than the previous one no longer counts (and may have expired):
        # subtracting from it would only create a stray negative counter.
        if not reservation.amount_usd or reservation.slot < int(now // SLOT_S) - 1:
            return
        for ns in reservation.namespaces:
            try:
                self.storage.incr_float(ns, f"reserved:{reservation.slot}", -reservation.amount_usd,
                                        ttl=3 * SLOT_S)
            except StorageError as e:
                log.warning("budget reservation not released (its slot expires on its own): %s", e)

    def _flush_unsettled(self, now: float) -> None:
        if not self._unsettled:
            return
        spend_key, _, end = self._spend_key(now)
        with self._lock:
            pending, self._unsettled = self._unsettled, {}
        for i, (ns, usd) in enumerate(pending.items()):
            try:
                self.storage.incr_float(ns, spend_key, usd, ttl=end.timestamp() - now + _GRACE_S)
            except StorageError:
                with self._lock:
                    for rest_ns, rest in list(pending.items())[i:]:
                        self._unsettled[rest_ns] = self._unsettled.get(rest_ns, 0.0) + rest
                raise

    def snapshot(self, tenant: str) -> dict[str, Any]:
        """For /stats: the binding scope's spend, limit, remaining, and the next reset."""
        now = self._clock()
        spend_key, _, end = self._spend_key(now)
        out: dict[str, Any] = {"period": self.period, "resets_at": _iso(end), "limit_usd": self.limit,
                               "scope": self.scope}
        try:
            best = None
            for name, ns in self._namespaces(tenant):
                spend, reserved = self._figures(ns, spend_key, int(now // SLOT_S))
                spend += self._unsettled.get(ns, 0.0)
                if best is None or spend > best[1]:
                    best = (name, spend, reserved)
            assert best is not None
            name, spend, reserved = best
            out.update(scope=name, spend_usd=spend, reserved_usd=reserved,
                       remaining_usd=max(0.0, self.limit - spend))
        except StorageError as e:
            out.update(spend_usd=None, reserved_usd=None, remaining_usd=None, error=str(e))
        return out
