"""What the headroom addons share: the one HeadroomCore and the per-flow state between hooks.

flow.metadata must stay tnetstring-serialisable, so live objects (the ticket, the stream tap)
are kept here, keyed by flow id, and dropped when the flow ends (response or error hook).
"""

from __future__ import annotations

from dataclasses import dataclass

from mitmproxy import http

from headroom_core.accounting import StreamAccount
from headroom_core.pipeline import HeadroomCore, Ticket
from headroom_core.routing import Route
from headroom_core.settings import Settings

META_KEY = "headroom"  # flow.metadata[META_KEY]: a plain-dict summary of what headroom did


def header_dict(headers: http.Headers) -> dict[str, str]:
    """The request headers as a plain dict with lower-case names, in one pass over the raw
    fields (lookups on mitmproxy's Headers scan every field each time). Repeated headers are
    joined with ", ", as Headers.get does."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers.fields:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("utf-8", "surrogateescape")
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def header_values(headers: http.Headers, names: tuple[bytes, ...]) -> dict[str, str]:
    """Only `names` (lower-case bytes) of header_dict(), in one pass over the raw fields: a
    Headers.get costs a scan of every field per name asked."""
    out: dict[str, str] = {}
    for raw_name, raw_value in headers.fields:
        lowered = raw_name.lower()
        if lowered in names:
            name = lowered.decode("latin-1")
            value = raw_value.decode("utf-8", "surrogateescape")
            out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def body_of(message: http.Message, headers: dict[str, str]) -> bytes:
    """message.get_content(strict=False) or b"", without its header lookup when `headers`
    (header_dict of the same message) show no content-encoding: the body is then the raw one."""
    if headers.get("content-encoding"):
        return message.get_content(strict=False) or b""
    return message.raw_content or b""


@dataclass
class FlowState:
    route: Route
    client_path: str  # the request target as the client sent it (before the upstream prefix)
    headers: dict[str, str]  # header_dict() of the client's request, before any change
    ticket: Ticket | None = None
    tap: StreamAccount | None = None


class Shared:
    """One per loaded addon set."""

    def __init__(self, core: HeadroomCore | None = None) -> None:
        self.core = core or HeadroomCore(Settings())
        self.flows: dict[str, FlowState] = {}
        self.services = None  # headroom_core.services.Services once attach() ran

    def attach(self, settings: Settings) -> None:
        """(Re)build the stores and features the settings turn on and plug them into the core."""
        from headroom_core import services

        self.services = services.attach(self.core, settings, self.services)

    def close_services(self) -> None:
        if self.services is not None:
            self.services.close()
            self.services = None


def note(flow, text: str) -> None:
    """Add a line to the flow's comment (shown by mitmweb), keeping what others wrote."""
    flow.comment = f"{flow.comment}\n{text}" if flow.comment else text
