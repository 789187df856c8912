"""What the headroom addons share: the one HeadroomCore and the per-flow state between hooks.

flow.metadata must stay tnetstring-serialisable, so live objects (the ticket, the stream tap)
are kept here, keyed by flow id, and dropped when the flow ends (response or error hook).
"""

from __future__ import annotations

from dataclasses import dataclass

from headroom_core.accounting import StreamAccount
from headroom_core.pipeline import HeadroomCore, Ticket
from headroom_core.routing import Route
from headroom_core.settings import Settings

META_KEY = "headroom"  # flow.metadata[META_KEY]: a plain-dict summary of what headroom did


@dataclass
class FlowState:
    route: Route
    client_path: str  # the request target as the client sent it (before the upstream prefix)
    ticket: Ticket | None = None
    tap: StreamAccount | None = None


class Shared:
    """One per loaded addon set."""

    def __init__(self, core: HeadroomCore | None = None) -> None:
        self.core = core or HeadroomCore(Settings())
        self.flows: dict[str, FlowState] = {}


def note(flow, text: str) -> None:
    """Add a line to the flow's comment (shown by mitmweb), keeping what others wrote."""
    flow.comment = f"{flow.comment}\n{text}" if flow.comment else text
