"""Sticky context-fitting decisions per conversation (DESIGN.md rule 3).

A conversation is known by a hash of its tenant, endpoint, system prompt and first user message —
the part of a request every turn of one session repeats. For it we keep the ids (content hashes)
of the units fitting dropped and of those it compressed harder. Re-applying the same decisions
to the same history yields the same bytes, so the provider's cached prefix breaks only on the
turns where fitting had to decide something new.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..storage.base import Storage

STATE_TTL_S = 7 * 86400


@dataclass(frozen=True)
class FitState:
    dropped: frozenset[str] = field(default_factory=frozenset)
    harder: frozenset[str] = field(default_factory=frozenset)  # compressed harder (compress-first)

    @property
    def empty(self) -> bool:
        return not self.dropped and not self.harder

    def restricted_to(self, present: set[str]) -> "FitState":
        """Forget units no longer in the history (an edited or compacted conversation)."""
        return FitState(self.dropped & present, self.harder & present)


def conversation_id(tenant: str, endpoint: str, anchor: Any) -> str:
    """Stable id of a conversation from what every one of its turns repeats (`anchor`)."""
    text = json.dumps(anchor, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    h = hashlib.sha256()
    for part in (tenant, endpoint, text):
        h.update(part.encode("utf-8", "surrogatepass"))
        h.update(b"\x00")
    return h.hexdigest()[:32]


class FitStateStore:
    """FitState per (tenant, conversation) in a Storage namespace `fit:<tenant>`."""

    def __init__(self, storage: Storage, ttl: float = STATE_TTL_S) -> None:
        self._storage = storage
        self._ttl = ttl

    def load(self, tenant: str, conv_id: str) -> FitState:
        raw = self._storage.get(f"fit:{tenant}", conv_id)
        if raw is None:
            return FitState()
        try:
            data = json.loads(raw)
            return FitState(frozenset(data.get("dropped", ())), frozenset(data.get("harder", ())))
        except (ValueError, AttributeError, TypeError):
            return FitState()  # a corrupt record costs one re-decision, never a failed request

    def save(self, tenant: str, conv_id: str, state: FitState) -> None:
        body = json.dumps({"v": 1, "dropped": sorted(state.dropped), "harder": sorted(state.harder)})
        self._storage.set(f"fit:{tenant}", conv_id, body.encode(), ttl=self._ttl)
