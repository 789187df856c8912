"""The Retrieval addon with mitmproxy's taddons/tflow: which flows go to the relay, and what a
flow looks like afterwards (real target restored, private header gone, metadata filled)."""

from __future__ import annotations

import json
import time

from mitmproxy import http
from mitmproxy.io import tnetstring
from mitmproxy.test import taddons, tflow, tutils

from headroom_addons.retrieval import META_RETRIEVAL, Retrieval
from headroom_addons.state import META_KEY, FlowState, Shared
from headroom_core.compression.markers import make_marker
from headroom_core.retrieval.common import TurnOutcome
from headroom_core.retrieval.relay import TOKEN_HEADER
from headroom_core.retrieval.tool import TOOL_NAME
from headroom_core.routing import Route, RouteKind
from headroom_core.settings import Settings
from headroom_core.wire.common import Endpoint

ROUTE = Route(RouteKind.UPSTREAM, "anthropic", Endpoint.ANTHROPIC_MESSAGES, scheme="https",
              host="api.anthropic.com", port=443, path="/v1/messages",
              host_header="api.anthropic.com")


def flow_state() -> FlowState:
    # FlowState gained the client's headers; build it either way while that lands.
    extra = {"headers": {"x-api-key": "sk-test"}} if "headers" in FlowState.__dataclass_fields__ else {}
    return FlowState(ROUTE, "/v1/messages", **extra)


def body(marked: bool) -> bytes:
    text = make_marker("90 of 100 lines omitted", "0123456789abcdef") if marked else "all here"
    return json.dumps({"model": "claude-test", "max_tokens": 5, "stream": True, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "log:\n" + text}]}]}).encode()


def flow_for(content: bytes) -> http.HTTPFlow:
    headers = http.Headers([(b"host", b"api.anthropic.com"), (b"x-api-key", b"sk-test")])
    req = tutils.treq(method=b"POST", path=b"/v1/messages", host="api.anthropic.com", port=443,
                      scheme=b"https", headers=headers, content=content,
                      timestamp_start=time.time())
    return tflow.tflow(req=req)


async def prepared(tmp_path, content: bytes, running: bool = True):
    shared = Shared()
    shared.core.configure(Settings(data_dir=str(tmp_path)))
    addon = Retrieval(shared)
    with taddons.context(addon):
        if running:
            addon.running()
        flow = flow_for(content)
        shared.flows[flow.id] = flow_state()
        await addon.request(flow)
        return addon, flow


async def test_plain_request_is_left_alone(tmp_path):
    addon, flow = await prepared(tmp_path, body(False))
    assert flow.request.host == "api.anthropic.com" and flow.request.content == body(False)
    assert TOKEN_HEADER not in flow.request.headers
    assert addon.relay.pending == 0
    addon.done()


async def test_marked_request_gets_the_tool_and_goes_to_the_relay(tmp_path):
    addon, flow = await prepared(tmp_path, body(True))
    sent = json.loads(flow.request.content)
    assert sent["tools"][-1]["name"] == TOOL_NAME
    assert (flow.request.scheme, flow.request.host, flow.request.port) == \
        ("http", "127.0.0.1", addon.relay.port)
    assert flow.request.headers[TOKEN_HEADER] == flow.id
    assert flow.metadata[META_RETRIEVAL]["tool"] is True
    # The response head arrives: the flow shows the provider again.
    flow.response = tutils.tresp(headers=http.Headers([(b"content-type", b"text/event-stream")]))
    addon.responseheaders(flow)
    assert (flow.request.scheme, flow.request.host, flow.request.port) == \
        ("https", "api.anthropic.com", 443)
    assert flow.request.host_header == "api.anthropic.com"
    assert TOKEN_HEADER not in flow.request.headers
    assert flow.response.stream is True
    addon.done()


async def test_a_flow_before_the_running_hook_still_gets_the_relay(tmp_path):
    # mitmproxy 12 can accept a flow before `running` fires (seen with a TLS upstream).
    addon, flow = await prepared(tmp_path, body(True), running=False)
    assert addon.relay is not None and flow.request.port == addon.relay.port
    addon.done()


async def test_error_forgets_the_registration(tmp_path):
    addon, flow = await prepared(tmp_path, body(True))
    assert addon.relay.pending == 1
    flow.error = tflow.terr()
    addon.error(flow)
    assert addon.relay.pending == 0 and flow.request.host == "api.anthropic.com"
    addon.done()


async def test_outcome_lands_in_metadata_and_comment(tmp_path):
    addon, flow = await prepared(tmp_path, body(True))
    flow.metadata[META_KEY] = {"provider": "anthropic"}
    outcome = TurnOutcome(rounds=2, hashes=["0123456789abcdef", "fedcba9876543210"],
                          retrieved_bytes=1234)
    addon._record(flow, outcome)
    meta = flow.metadata[META_RETRIEVAL]
    assert meta["rounds"] == 2 and meta["bytes"] == 1234 and len(meta["hashes"]) == 2
    assert flow.metadata[META_KEY]["retrieval_rounds"] == 2
    assert "2 round(s)" in flow.comment and "1234 bytes" in flow.comment
    tnetstring.dumps(flow.metadata)  # flow files (-w) must still save
    addon.done()


def test_stores_come_from_the_shared_services_when_attached(tmp_path):
    from types import SimpleNamespace

    from headroom_core.ccr import CCRStore
    from headroom_core.storage.memory import MemoryStorage

    shared = Shared()
    addon = Retrieval(shared)
    ccr, state = CCRStore(MemoryStorage()), MemoryStorage()
    shared.services = SimpleNamespace(ccr=ccr, storage=lambda name: state)
    got_ccr, conversations = addon.stores()
    assert got_ccr is ccr and conversations.storage is state
