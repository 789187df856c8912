"""Forward mode: a regular HTTP(S) proxy that intercepts provider hosts only.

`headroom proxy --forward` adds a `regular@<port>` listener beside the reverse one. Tools that
honour HTTPS_PROXY send everything through it; only api.anthropic.com, api.openai.com and the
`headroom_intercept_host` entries are TLS-intercepted and optimised. Every other CONNECT tunnel is
relayed as raw bytes: the client completes TLS with the real server and sees its certificate.

Contract with the other addons (read by `addons/headroom.py`'s routing):
- `is_forward_flow(flow)`: the flow came in on the regular listener. Such a flow keeps its real
  scheme, host and port; the reverse-mode upstream rewrite must not be applied to it.
- `is_intercepted_flow(flow)`: a forward flow to a provider host — the only forward flows that
  may be optimised. Plain-HTTP forward requests to other hosts (absolute-form `GET http://...`)
  pass through unmodified.
"""

# No `from __future__ import annotations`: mitmproxy loads `-s` scripts without registering them
# in sys.modules, and dataclasses then fail on string annotations.
import logging
from dataclasses import dataclass
from collections.abc import Iterable, Sequence

from mitmproxy import ctx, exceptions, http
from mitmproxy.proxy import layer, layers
from mitmproxy.proxy.mode_specs import RegularMode

logger = logging.getLogger(__name__)

PROVIDER_HOSTS = ("api.anthropic.com", "api.openai.com")
OPTION = "headroom_intercept_host"
META_KEY = "headroom_forward"  # flow.metadata key: "intercepted" | "passthrough"


@dataclass(frozen=True)
class HostRule:
    """One intercepted host; `port` None matches any port."""

    host: str
    port: int | None = None

    def matches(self, host: str, port: int) -> bool:
        return host.lower().rstrip(".") == self.host and (self.port is None or self.port == port)


def parse_host_rule(spec: str) -> HostRule:
    """`host`, `host:port` or `[v6]:port` -> HostRule; ValueError on anything else."""
    text = spec.strip().lower()
    if not text or "/" in text or " " in text:
        raise ValueError(f"{OPTION}: expected host or host:port, got {spec!r}")
    port: int | None = None
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise ValueError(f"{OPTION}: bad IPv6 host {spec!r}")
        if rest:
            port = _port(rest[1:], spec)
    elif text.count(":") == 1:
        host, _, p = text.partition(":")
        port = _port(p, spec)
    else:
        host = text  # a bare name, IPv4 or unbracketed IPv6 address
    if not host:
        raise ValueError(f"{OPTION}: empty host in {spec!r}")
    return HostRule(host.rstrip("."), port)


def _port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{OPTION}: bad port in {spec!r}")
    return int(text)


def intercept_rules(extra: Iterable[str]) -> tuple[HostRule, ...]:
    """The provider hosts plus the user's entries."""
    return tuple(HostRule(h) for h in PROVIDER_HOSTS) + tuple(parse_host_rule(s) for s in extra)


def is_intercepted(host: str, port: int, rules: Sequence[HostRule]) -> bool:
    return any(r.matches(host, port) for r in rules)


def is_forward_flow(flow: http.HTTPFlow) -> bool:
    """True for a flow received on the regular (forward) listener, not the reverse one."""
    return isinstance(flow.client_conn.proxy_mode, RegularMode)


def is_intercepted_flow(flow: http.HTTPFlow) -> bool:
    """A forward flow to a provider host (stamped by ForwardMode.requestheaders)."""
    return is_forward_flow(flow) and flow.metadata.get(META_KEY) == "intercepted"


class ForwardMode:
    """Tunnels non-provider hosts of the regular listener without TLS interception."""

    def __init__(self) -> None:
        self.rules: tuple[HostRule, ...] = intercept_rules(())

    def load(self, loader) -> None:
        # addons/headroom.py declares every headroom_* option from the settings table; declare
        # ours only when loaded alone (plain `mitmdump -s addons/forward.py`, unit tests).
        if OPTION not in ctx.options:
            loader.add_option(OPTION, Sequence[str], [],
                              "Extra host (host or host:port) to intercept in forward mode; "
                              "every other host is tunnelled without TLS interception.")

    def configure(self, updated: set[str]) -> None:
        if OPTION in updated:
            try:
                self.rules = intercept_rules(getattr(ctx.options, OPTION))
            except ValueError as e:
                raise exceptions.OptionsError(str(e)) from e

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        """Inside a CONNECT tunnel of the regular listener: relay bytes unless intercepted.

        Runs after mitmproxy's own NextLayer addon and overrides its choice, so TLS to other
        hosts is never terminated here (and non-TLS tunnels are not parsed either).
        """
        context = nextlayer.context
        if not isinstance(context.client.proxy_mode, RegularMode):
            return
        if context.server.address is None:
            return  # the proxy's own HTTP layer, before any CONNECT
        host, port, *_ = context.server.address
        if is_intercepted(str(host), int(port), self.rules):
            return
        if isinstance(nextlayer.layer, layers.TCPLayer):
            return
        logger.debug("forward: tunnelling %s:%s untouched", host, port)
        nextlayer.layer = layers.TCPLayer(context, ignore=True)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        if not is_forward_flow(flow):
            return
        hit = is_intercepted(flow.request.host, flow.request.port, self.rules)
        flow.metadata[META_KEY] = "intercepted" if hit else "passthrough"


addons = [ForwardMode()]
