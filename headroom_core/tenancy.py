"""Who a request belongs to: a hash of its API key, never the key itself (DESIGN.md rule 9)."""

from __future__ import annotations

import hashlib
from typing import Mapping

ANONYMOUS = "anonymous"

# Headers that carry a provider credential, in the order providers document them.
_KEY_HEADERS = ("x-api-key", "authorization", "api-key")


def api_key_of(headers: Mapping[str, str]) -> str | None:
    """The credential a request carries (Bearer prefix removed), or None."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name in _KEY_HEADERS:
        value = lowered.get(name, "").strip()
        if not value:
            continue
        if name == "authorization":
            scheme, _, rest = value.partition(" ")
            value = rest.strip() if scheme.lower() == "bearer" else value
        if value:
            return value
    return None


def tenant_of_key(key: str | None) -> str:
    if not key:
        return ANONYMOUS
    return "t_" + hashlib.sha256(b"headroom-tenant\0" + key.encode()).hexdigest()[:24]


def tenant_of(headers: Mapping[str, str]) -> str:
    """The tenant id of a request: stable, opaque, safe to log."""
    return tenant_of_key(api_key_of(headers))
