"""The one storage interface behind CCR, the response cache, rate limits, budgets and TOIN."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class StorageError(RuntimeError):
    """The backend failed (unreachable Redis, full disk); callers fail open or refuse clearly."""


@runtime_checkable
class Storage(Protocol):
    """Bytes by (namespace, key), plus the two atomic updates spend control needs.

    Namespaces are prefixed by feature and tenant: `ccr:<tenant>`, `cache:<tenant>`,
    `rl:<tenant>`, `budget:<scope>`, `toin:<tenant>`. Every method is atomic on its own.
    """

    def get(self, ns: str, key: str) -> bytes | None: ...

    def set(self, ns: str, key: str, value: bytes, ttl: float | None = None) -> None: ...

    def delete(self, ns: str, key: str) -> None: ...

    def incr_float(self, ns: str, key: str, amount: float, ttl: float | None = None) -> float:
        """Add `amount` to a float counter (created at 0) and return the new value."""
        ...

    def token_bucket(self, ns: str, key: str, capacity: float, refill_per_s: float,
                     cost: float, now: float) -> tuple[bool, float]:
        """Take `cost` from a bucket refilled continuously; (allowed, seconds until it would be).

        A negative cost returns tokens (reconciliation after the provider's usage is known).
        """
        ...

    def close(self) -> None: ...
