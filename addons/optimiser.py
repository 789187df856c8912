"""Runs headroom's request path (admission, cache, optimisation) on provider-bound flows.

The flow's body is replaced only when a transform changed it; otherwise the client's bytes go
out untouched. Our private `x-headroom-*` request headers are removed before forwarding, on
every path. Any exception here forwards the original request (fail open): it is logged with the
flow id, counted in `headroom_optimization_errors_total` and written in the flow's comment.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from headroom_core.pipeline import PRIVATE_HEADER_PREFIX, Action, RequestInfo, Ticket
from headroom_core.routing import RouteKind
from headroom_core.pipeline import tenant_from

from .endpoints import make_response
from .state import META_KEY, Shared, body_of, note

logger = logging.getLogger("headroom")


_PRIVATE = PRIVATE_HEADER_PREFIX.encode()


def strip_private_headers(headers: http.Headers) -> None:
    # Scan the raw fields (cheap); rewrite them only when a private header is present.
    fields = headers.fields
    if any(name[:len(_PRIVATE)].lower() == _PRIVATE for name, _ in fields):
        headers.fields = tuple(f for f in fields if f[0][:len(_PRIVATE)].lower() != _PRIVATE)


def has_private_headers(headers: dict[str, str]) -> bool:
    """From header_dict(): does the request carry any x-headroom-* header?"""
    return any(name.startswith(PRIVATE_HEADER_PREFIX) for name in headers)


class Optimiser:
    """The `request` hook for provider-bound flows; leaves a Ticket for accounting."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        state = self.shared.flows.get(flow.id)
        if state is None or state.route.kind is not RouteKind.UPSTREAM:
            return
        req = flow.request
        core = self.shared.core
        original = req.raw_content
        info = RequestInfo(flow.id, req.method, state.client_path, state.headers,
                           body_of(req, state.headers), state.route, req.timestamp_start)
        try:
            decision = await core.prepare(info)
            state.ticket = decision.ticket
            if decision.action is Action.FORWARD_CHANGED:
                req.content = decision.body
            elif decision.action is Action.RESPOND:
                flow.response = make_response(decision.response)
            if decision.ticket.error:
                note(flow, f"headroom: {decision.ticket.error}")
            flow.metadata[META_KEY] = decision.ticket.summary()
        except Exception as e:  # fail open: forward what the client sent
            req.raw_content = original
            logger.exception("headroom: flow %s: request processing failed; forwarding the "
                             "original request", flow.id)
            core.metrics.optimization_error(state.route.provider, "", "internal")
            error = f"request processing failed ({type(e).__name__}: {e}); original forwarded"
            note(flow, f"headroom: {error}")
            state.ticket = Ticket(info, tenant_from(state.headers), error=error)
            flow.metadata[META_KEY] = state.ticket.summary()
        finally:
            if has_private_headers(state.headers):
                strip_private_headers(req.headers)
