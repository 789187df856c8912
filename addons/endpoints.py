"""Answers `/health`, `/stats`, `/metrics` and unknown paths itself; they never reach a provider."""

from __future__ import annotations

from mitmproxy import http

from headroom_core.errors import LocalResponse
from headroom_core.routing import RouteKind

from .state import META_KEY, Shared


def make_response(local: LocalResponse) -> http.Response:
    headers = [(k.encode(), v.encode()) for k, v in local.headers]
    return http.Response.make(local.status, local.body, headers)


class LocalEndpoints:
    """Runs after Routing: local routes get their answer in the `request` hook."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        state = self.shared.flows.get(flow.id)
        if state is None or state.route.kind is RouteKind.UPSTREAM:
            return
        self.shared.flows.pop(flow.id, None)
        core = self.shared.core
        if state.route.kind is RouteKind.LOCAL:
            # Requests finished before this one are accounted in a worker thread: wait for them,
            # so a client reading /stats right after its response sees that response counted.
            await core.flush()
            local = core.local_response(state.route.local, flow.request.method)
        else:
            local = core.not_found(flow.request.method, state.client_path)
        flow.response = make_response(local)
        flow.metadata[META_KEY] = {"local": state.route.local or "not_found"}
