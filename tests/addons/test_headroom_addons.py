"""The headroom addons one by one, with mitmproxy's taddons/tflow (no network)."""

from __future__ import annotations

import asyncio
import time

import pytest
from mitmproxy import exceptions, http
from mitmproxy.io import tnetstring
from mitmproxy.proxy.mode_specs import ProxyMode
from mitmproxy.test import taddons, tflow, tutils

from headroom_addons.accounting import Accounting, chain, is_event_stream
from headroom_addons.endpoints import LocalEndpoints
from headroom_addons.optimiser import Optimiser, strip_private_headers
from headroom_addons.options import HeadroomOptions, declared_default, typespec
from headroom_addons.routing import Routing
from headroom_addons.state import META_KEY, Shared
from headroom_core.pipeline import OptimizeOutcome
from headroom_core.settings import OPTIONS, OPTIONS_BY_NAME

BODY = b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'


def reverse_flow(path: str = "/v1/messages", method: str = "POST", body: bytes = BODY,
                 headers: tuple = ()) -> http.HTTPFlow:
    hdrs = http.Headers([(b"host", b"api.anthropic.com"), (b"content-type", b"application/json"),
                         *[(k.encode(), v.encode()) for k, v in headers]])
    req = tutils.treq(method=method.encode(), path=path.encode(), host="api.anthropic.com",
                      port=443, scheme=b"https", headers=hdrs, content=body,
                      timestamp_start=time.time())
    flow = tflow.tflow(req=req)
    flow.client_conn.proxy_mode = ProxyMode.parse("reverse:https://api.anthropic.com@8787")
    return flow


def make(shared: Shared | None = None):
    shared = shared or Shared()
    # small test bodies: let the optimiser see them (it skips bodies under min_tokens bytes)
    opts = HeadroomOptions(shared, environ={"HEADROOM_MIN_TOKENS": "10"})
    return shared, [opts, Routing(shared), LocalEndpoints(shared), Optimiser(shared),
                    Accounting(shared, console=None)]


async def run_request(addons, flow) -> None:
    for addon in addons:
        hook = getattr(addon, "request", None)
        if hook:
            result = hook(flow)
            if asyncio.iscoroutine(result):
                await result


# --- options ---

def test_every_option_is_declared_with_its_type():
    shared, addons = make()
    with taddons.context(*addons) as tctx:
        for spec in OPTIONS:
            assert spec.mitm_name in tctx.options
        assert tctx.options.headroom_port == 8787
        assert tctx.options.headroom_optimize is True


def test_env_gives_the_default_and_set_wins():
    shared = Shared()
    opts = HeadroomOptions(shared, environ={"HEADROOM_MIN_TOKENS": "900",
                                            "HEADROOM_PROTECT_TOOLS": "Read,Bash"})
    with taddons.context(opts) as tctx:
        assert tctx.options.headroom_min_tokens == 900
        assert shared.core.settings.min_tokens == 900
        assert shared.core.settings.protect_tool == ("Read", "Bash")
        tctx.configure(opts, headroom_min_tokens=100)
        assert shared.core.settings.min_tokens == 100


@pytest.mark.parametrize("name,value,needle", [
    ("headroom_min_savings", "5", "--min-savings"),
    ("headroom_budget", "lots", "--budget"),
    ("headroom_openai_api_url", "not a url", "--openai-api-url"),
    ("headroom_port", 0, "--port"),
])
def test_bad_option_is_an_options_error(name, value, needle):
    shared, addons = make()
    with taddons.context(*addons) as tctx:
        with pytest.raises(exceptions.OptionsError, match=needle):
            tctx.configure(addons[0], **{name: value})


def test_bad_environment_value_is_reported():
    default, error = declared_default(OPTIONS_BY_NAME["port"], {"HEADROOM_PORT": "x"})
    assert default == 8787 and "HEADROOM_PORT" in error
    shared = Shared()
    opts = HeadroomOptions(shared, environ={"HEADROOM_PORT": "x"})
    with pytest.raises(exceptions.OptionsError, match="HEADROOM_PORT"):
        with taddons.context(opts) as tctx:
            tctx.configure(opts)


@pytest.mark.parametrize("name,expected", [("port", int), ("optimize", bool), ("budget", str),
                                           ("min_savings", str)])
def test_typespec(name, expected):
    assert typespec(OPTIONS_BY_NAME[name]) is expected


# --- routing and local endpoints ---

async def test_routing_points_the_flow_at_the_upstream():
    shared, addons = make()
    with taddons.context(*addons) as tctx:
        tctx.configure(addons[0], headroom_openai_api_url="http://127.0.0.1:9000/openai")
        flow = reverse_flow("/v1/chat/completions?x=1", headers=(("authorization", "Bearer k"),))
        await run_request(addons, flow)
    r = flow.request
    assert (r.scheme, r.host, r.port, r.path) == ("http", "127.0.0.1", 9000,
                                                  "/openai/v1/chat/completions?x=1")
    assert r.host_header == "127.0.0.1:9000"
    assert flow.response is None
    assert flow.metadata[META_KEY]["provider"] == "openai"


@pytest.mark.parametrize("path,status", [("/health", 200), ("/stats", 200), ("/metrics", 200),
                                         ("/nowhere", 404)])
async def test_local_endpoints_answer_without_forwarding(path, status):
    shared, addons = make()
    with taddons.context(*addons):
        flow = reverse_flow(path, method="GET", body=b"")
        await run_request(addons, flow)
    assert flow.response is not None and flow.response.status_code == status
    assert flow.id not in shared.flows


async def test_forward_flows_to_other_hosts_are_not_touched():
    shared, addons = make()
    with taddons.context(*addons):
        flow = reverse_flow()
        flow.client_conn.proxy_mode = ProxyMode.parse("regular")
        flow.request.host = "example.com"
        await run_request(addons, flow)
    assert flow.request.host == "example.com" and not flow.response
    assert flow.id not in shared.flows


# --- optimiser hook ---

class Shrink:
    """A stand-in compression engine: replaces the user's text."""

    def optimize(self, request, tenant, headers=None):
        request.doc["messages"][0]["content"] = "h"
        return OptimizeOutcome(True, 10, 4)


class Boom:
    def optimize(self, request, tenant, headers=None):
        raise RuntimeError("engine exploded")


class Slow:
    def optimize(self, request, tenant, headers=None):
        time.sleep(0.5)
        request.doc["messages"][0]["content"] = "never sent"
        return OptimizeOutcome(True, 10, 1)


async def test_unchanged_request_keeps_its_bytes_and_private_headers_go():
    shared, addons = make()
    with taddons.context(*addons):
        flow = reverse_flow(headers=(("x-headroom-bypass", "1"), ("X-Headroom-Note", "n")))
        raw = flow.request.raw_content
        await run_request(addons, flow)
    assert flow.request.raw_content is raw
    assert not [k for k in flow.request.headers if k.lower().startswith("x-headroom-")]
    assert flow.metadata[META_KEY]["bypass"] is True


async def test_changed_request_is_written_in_the_body_style():
    shared, addons = make()
    shared.core.optimizer = Shrink()
    with taddons.context(*addons):
        flow = reverse_flow()
        await run_request(addons, flow)
    assert flow.request.content == BODY.replace(b'"hi"', b'"h"')
    assert flow.request.headers["content-length"] == str(len(flow.request.content))
    meta = flow.metadata[META_KEY]
    assert meta["changed"] is True and meta["tokens_before"] == 10 and meta["tokens_after"] == 4
    tnetstring.dumps(flow.metadata)  # stays serialisable for -w


async def test_bypass_header_skips_the_optimizer():
    shared, addons = make()
    shared.core.optimizer = Shrink()
    with taddons.context(*addons):
        flow = reverse_flow(headers=(("x-headroom-bypass", "true"),))
        await run_request(addons, flow)
    assert flow.request.content == BODY


@pytest.mark.parametrize("engine,reason", [(Boom(), "exception"), (Slow(), "timeout")])
async def test_optimizer_failure_fails_open(engine, reason, caplog):
    shared, addons = make()
    shared.core.optimizer = engine
    with taddons.context(*addons) as tctx:
        tctx.configure(addons[0], headroom_compression_budget_ms=100)
        flow = reverse_flow()
        await run_request(addons, flow)
    assert flow.request.content == BODY
    assert "original forwarded" in flow.comment
    assert flow.id in caplog.text
    text = shared.core.metrics.render().decode()
    assert f'headroom_optimization_errors_total{{model="claude-sonnet-4-5",provider="anthropic",reason="{reason}"}} 1.0' in text


async def test_exception_inside_the_hook_forwards_the_original(monkeypatch):
    shared, addons = make()

    async def broken(info):
        raise KeyError("bug")

    monkeypatch.setattr(shared.core, "prepare", broken)
    with taddons.context(*addons):
        flow = reverse_flow(headers=(("x-headroom-bypass", "1"),))
        await run_request(addons, flow)
    assert flow.request.content == BODY and flow.response is None
    assert "request processing failed" in flow.comment
    assert "x-headroom-bypass" not in flow.request.headers
    assert shared.flows[flow.id].ticket.error


# --- stream tap and accounting ---

def test_event_stream_detection():
    assert is_event_stream("text/event-stream; charset=utf-8")
    assert not is_event_stream("application/json")


def test_chain_feeds_the_tap_what_the_client_gets():
    seen = []
    both = chain(lambda c: [c.upper()] if c else b"", seen.append)
    assert both(b"ab") == [b"AB"] and both(b"") == b""
    assert seen == [b"AB", b""]


async def test_sse_response_is_tapped_and_accounted():
    shared, addons = make()
    with taddons.context(*addons):
        flow = reverse_flow(body=BODY[:-1] + b',"stream":true}')
        await run_request(addons, flow)
        flow.response = tutils.tresp(headers=http.Headers(((b"content-type", b"text/event-stream"),)),
                                     content=None)
        acct = addons[-1]
        acct.responseheaders(flow)
        tap = flow.response.stream
        assert callable(tap)
        events = (b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-x",'
                  b'"usage":{"input_tokens":12,"output_tokens":1}}}\n\n'
                  b'event: message_delta\ndata: {"type":"message_delta","delta":{},'
                  b'"usage":{"output_tokens":5}}\n\n')
        for i in range(0, len(events), 7):
            assert tap(events[i:i + 7]) == events[i:i + 7]
        assert tap(b"") == b""
        acct.response(flow)
        await shared.core.flush()
    snap = shared.core.stats.snapshot()
    assert snap["requests"]["total"] == 1 and snap["requests"]["streamed"] == 1
    assert snap["usage"]["uncached_input"] == 12 and snap["usage"]["output"] == 5
    assert snap["tokens"]["before"] > 0


async def test_error_hook_accounts_a_broken_flow():
    shared, addons = make()
    with taddons.context(*addons):
        flow = reverse_flow()
        await run_request(addons, flow)
        flow.error = tflow.terr("connection refused")
        addons[-1].error(flow)
        await shared.core.flush()
    snap = shared.core.stats.snapshot()
    assert snap["requests"]["by_status"] == {"error": 1}
    assert flow.id not in shared.flows


def test_strip_private_headers():
    h = http.Headers([(b"X-Headroom-A", b"1"), (b"x-api-key", b"k"), (b"x-headroom-b", b"2")])
    strip_private_headers(h)
    assert list(h.keys()) == ["x-api-key"]


def test_list_options_take_repeated_set_strings():
    shared, addons = make()
    with taddons.context(*addons) as tctx:
        tctx.options.set("headroom_protect_tool=Read", "headroom_protect_tool=Bash")
        assert shared.core.settings.protect_tool == ("Read", "Bash")
        tctx.options.set("headroom_protect_tool")
        assert shared.core.settings.protect_tool == ()


def test_credentials_are_redacted_once_the_flow_ends():
    from headroom_addons.redact import RedactCredentials

    addon = RedactCredentials()
    flow = reverse_flow(headers=(("x-api-key", "sk-ant-1"), ("Authorization", "Bearer sk-2")))
    flow.response = tutils.tresp()
    addon.response(flow)
    values = [flow.request.headers["x-api-key"], flow.request.headers["authorization"]]
    assert all(v.startswith("[redacted by headroom: t_") for v in values)
    errored = reverse_flow(headers=(("api-key", "azure-3"),))
    addon.error(errored)
    assert "azure-3" not in str(errored.request.headers)
    plain = reverse_flow()
    addon.response(plain)
    assert "redacted" not in str(plain.request.headers)
