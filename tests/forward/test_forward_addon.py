"""addons/forward.py without a network: host rules, the next-layer decision, flow stamping."""

from __future__ import annotations

import pytest
from mitmproxy import exceptions
from mitmproxy.proxy import layer, layers
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow

from headroom_addons import forward


@pytest.mark.parametrize("spec, rule", [
    ("localhost", forward.HostRule("localhost")),
    ("Provider.Example.", forward.HostRule("provider.example")),
    ("127.0.0.1:8443", forward.HostRule("127.0.0.1", 8443)),
    ("[::1]:9000", forward.HostRule("::1", 9000)),
    ("[::1]", forward.HostRule("::1")),
    ("::1", forward.HostRule("::1")),
])
def test_parse_host_rule(spec, rule):
    assert forward.parse_host_rule(spec) == rule


@pytest.mark.parametrize("spec", ["", "host:0", "host:99999", "host:x", "http://host", "a b",
                                  "[::1", "[::1]x", ":443"])
def test_parse_host_rule_rejects(spec):
    with pytest.raises(ValueError):
        forward.parse_host_rule(spec)


@pytest.mark.parametrize("host, port, expected", [
    ("api.anthropic.com", 443, True),
    ("API.OPENAI.COM", 443, True),
    ("api.openai.com.", 443, True),
    ("example.com", 443, False),
    ("evil-api.anthropic.com", 443, False),
    ("gateway.local", 443, True),
    ("127.0.0.1", 8443, True),
    ("127.0.0.1", 8444, False),
])
def test_is_intercepted(host, port, expected):
    rules = forward.intercept_rules(["gateway.local", "127.0.0.1:8443"])
    assert forward.is_intercepted(host, port, rules) is expected


def nextlayer_for(mode: str, address: tuple[str, int] | None) -> layer.NextLayer:
    with taddons.context() as tctx:
        client = tflow.tclient_conn()
        client.proxy_mode = ProxyMode.parse(mode)
        context = Context(client, tctx.options)
        context.server.address = address
        return layer.NextLayer(context)


def run_next_layer(addon: forward.ForwardMode, nl: layer.NextLayer) -> None:
    addon.next_layer(nl)


def test_other_hosts_are_tunnelled_without_interception():
    addon = forward.ForwardMode()
    with taddons.context(addon):
        nl = nextlayer_for("regular", ("example.com", 443))
        nl.layer = layers.ServerTLSLayer(nl.context)  # what mitmproxy's NextLayer addon chose
        addon.next_layer(nl)
        assert isinstance(nl.layer, layers.TCPLayer)
        assert nl.layer.flow is None  # ignore=True: relayed, no TCP flow recorded


def test_provider_hosts_are_left_to_mitmproxy():
    addon = forward.ForwardMode()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, headroom_intercept_host=["gateway.local"])
        for host in ("api.anthropic.com", "api.openai.com", "gateway.local"):
            nl = nextlayer_for("regular", (host, 443))
            addon.next_layer(nl)
            assert nl.layer is None


def test_reverse_listener_and_proxy_start_untouched():
    addon = forward.ForwardMode()
    with taddons.context(addon):
        nl = nextlayer_for("reverse:https://example.com", ("example.com", 443))
        addon.next_layer(nl)
        assert nl.layer is None
        nl = nextlayer_for("regular", None)  # before any CONNECT
        addon.next_layer(nl)
        assert nl.layer is None


def test_bad_intercept_host_fails_at_configure():
    addon = forward.ForwardMode()
    with taddons.context(addon) as tctx:
        with pytest.raises(exceptions.OptionsError, match="headroom_intercept_host"):
            tctx.configure(addon, headroom_intercept_host=["http://x"])


def flow_on(mode: str, host: str, port: int = 443):
    f = tflow.tflow()
    f.client_conn.proxy_mode = ProxyMode.parse(mode)
    f.request.host, f.request.port = host, port
    return f


def test_forward_flows_are_stamped():
    addon = forward.ForwardMode()
    with taddons.context(addon):
        provider = flow_on("regular", "api.anthropic.com")
        other = flow_on("regular", "example.com", 80)
        reverse = flow_on("reverse:https://api.openai.com", "api.openai.com")
        for f in (provider, other, reverse):
            addon.requestheaders(f)
    assert forward.is_forward_flow(provider) and forward.is_intercepted_flow(provider)
    assert forward.is_forward_flow(other) and not forward.is_intercepted_flow(other)
    assert not forward.is_forward_flow(reverse) and not forward.is_intercepted_flow(reverse)
    assert forward.META_KEY not in reverse.metadata
