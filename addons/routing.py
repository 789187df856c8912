"""Points each reverse-proxy flow at its provider (routing table: headroom_core.routing).

Runs in the `request` hook: the flow's scheme, host, port and path become the upstream's, and
the Host header with them (mitmproxy set it to the reverse-mode placeholder target). Local
endpoints and unknown paths are left for LocalEndpoints to answer. Flows of the forward
(regular) listener keep their real destination; only intercepted provider hosts are tracked.
"""

from __future__ import annotations

import logging

from mitmproxy import http

from headroom_core.routing import Route, RouteKind, route_intercepted

from .state import FlowState, Shared, header_dict, note

logger = logging.getLogger("headroom")

try:  # the forward-mode addon decides which forward flows are providers'
    from .forward import is_forward_flow, is_intercepted_flow
except ImportError:  # pragma: no cover - forward mode not installed
    def is_forward_flow(flow: http.HTTPFlow) -> bool:
        return False

    def is_intercepted_flow(flow: http.HTTPFlow) -> bool:
        return False


def apply_route(request: http.Request, r: Route, headers: dict[str, str] | None = None) -> None:
    """Address the request to the route's upstream; untouched fields stay as received.

    scheme, host and port are written to `request.data`, as mitmproxy's own layers do: the
    public setters would also rewrite the Host header, which is set once, right after.
    `headers` (header_dict of the request, if at hand) spares a scan of the fields to read
    the current Host header of an HTTP/1 request.
    """
    data = request.data
    data.scheme = r.scheme.encode()
    data.host = r.host
    data.port = r.port
    if request.path != r.path:
        request.path = r.path
    if headers is not None and data.http_version.startswith(b"HTTP/1"):
        current = headers.get("host")  # what host_header reads for HTTP/1
    else:
        current = request.host_header
    if current != r.host_header:
        request.host_header = r.host_header


class Routing:
    """Routes every flow of the reverse listener and intercepted forward flows."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        req = flow.request
        core = self.shared.core
        client_path = req.path
        headers = header_dict(req.headers)
        try:
            if is_forward_flow(flow):
                if not is_intercepted_flow(flow):
                    return  # another host through the forward proxy: not ours
                r = route_intercepted(req.method, req.path, headers, req.scheme, req.host,
                                      req.port)
            else:
                r = core.route(req.method, req.path, headers)
                if r.kind is RouteKind.UPSTREAM:
                    apply_route(req, r, headers)
        except Exception as e:  # fail open: the flow goes to mitmproxy's own target
            logger.exception("headroom: flow %s: routing failed", flow.id)
            core.metrics.optimization_error("unknown", "", "internal")
            note(flow, f"headroom: routing failed ({type(e).__name__}: {e})")
            return
        self.shared.flows[flow.id] = FlowState(r, client_path, headers)
