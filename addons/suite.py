"""All headroom addons as one mitmproxy addon: `Headroom` runs its parts' hooks in their order.

mitmproxy offers every event (about eight per request, counting its `update` events) to every
addon node it can reach, and each node costs a lookup even when it has no hook for the event.
Ten separate addons made that dispatch the larger part of headroom's own cost per request;
one object with the same parts, called in the same order, keeps the behaviour for a fraction
of it. The parts stay ordinary addons (each can still be loaded or tested alone).

Semantics kept from mitmproxy's own dispatch: the parts run in list order; an exception in one
part is logged and the next part still runs (so credentials are redacted even if accounting
broke); `OptionsError` and `AddonHalt` propagate, as mitmproxy lets them.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from mitmproxy import exceptions, http

logger = logging.getLogger("headroom")

_PROPAGATE = (exceptions.AddonHalt, exceptions.OptionsError)

# The hooks the parts implement. A part that gains another hook must be listed here (a test
# checks that every hook of every part is reachable through Headroom).
SYNC_HOOKS = ("load", "configure", "running", "done", "next_layer", "http_connect",
              "requestheaders", "responseheaders", "response", "error")
ASYNC_HOOKS = ("request",)
# Events mitmproxy raises per connection or flow of HTTP(S) proxying: addons/headroom.py binds
# each name to None at module level (the script module itself hooks none; see there). Lifecycle
# and deprecated hook names (add_log: mitmproxy warns about an addon that has it) are left out.
EVENT_HOOKS = ("update", "requestheaders", "request", "responseheaders", "response", "error",
               "client_connected", "client_disconnected", "server_connect", "server_connected",
               "server_disconnected", "server_connect_error", "next_layer", "http_connect",
               "http_connected", "http_connect_upstream", "http_connect_error",
               "tls_clienthello", "tls_start_client", "tls_start_server",
               "tls_established_client", "tls_established_server", "tls_failed_client",
               "tls_failed_server")


def _failed(hook: Callable[..., Any]) -> None:
    owner = getattr(hook, "__self__", None)
    name = f"{type(owner).__name__}.{hook.__name__}" if owner is not None else repr(hook)
    logger.error("headroom: addon error in %s", name, exc_info=True)


class Headroom:
    """One addon node for mitmproxy; `parts` are the headroom addons in request-path order.

    Deliberately no `addons` attribute: mitmproxy would then offer every event to each part
    itself, which is exactly the cost this class exists to avoid.
    """

    def __init__(self, parts: list[Any]) -> None:
        self.parts = list(parts)
        self._hooks: dict[str, tuple[Callable[..., Any], ...]] = {
            name: tuple(getattr(p, name) for p in self.parts if callable(getattr(p, name, None)))
            for name in SYNC_HOOKS + ASYNC_HOOKS}

    def _run(self, name: str, *args: Any) -> None:
        for hook in self._hooks[name]:
            try:
                hook(*args)
            except _PROPAGATE:
                raise
            except Exception:
                _failed(hook)

    # --- lifecycle (mitmproxy calls these synchronously) ---

    def load(self, loader: Any) -> None:
        self._run("load", loader)

    def configure(self, updated: set[str]) -> None:
        self._run("configure", updated)

    def running(self) -> None:
        self._run("running")

    def done(self) -> None:
        self._run("done")

    # --- connections ---

    def next_layer(self, nextlayer: Any) -> None:
        self._run("next_layer", nextlayer)

    def http_connect(self, flow: http.HTTPFlow) -> None:
        self._run("http_connect", flow)

    # --- flows ---

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._run("requestheaders", flow)

    async def request(self, flow: http.HTTPFlow) -> None:
        for hook in self._hooks["request"]:
            try:
                pending = hook(flow)
                if pending is not None:  # an async part's coroutine
                    await pending
            except _PROPAGATE:
                raise
            except Exception:
                _failed(hook)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._run("responseheaders", flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._run("response", flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._run("error", flow)
