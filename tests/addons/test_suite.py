"""addons/suite.py: the parts as one mitmproxy addon, and the one-pass helpers the parts share."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import mitmproxy.addons  # noqa: F401  (registers every hook name in hooks.all_hooks)
import mitmproxy.proxy.layers  # noqa: F401
import mitmproxy.proxy.server_hooks  # noqa: F401
import pytest
from mitmproxy import exceptions, hooks, http
from mitmproxy.test import taddons, tflow, tutils

from headroom_addons.accounting import Accounting
from headroom_addons.endpoints import LocalEndpoints
from headroom_addons.forward import ForwardMode
from headroom_addons.inspect import Annotate, CaptureOriginal, decoded_body
from headroom_addons.optimiser import Optimiser, has_private_headers
from headroom_addons.options import HeadroomOptions
from headroom_addons.redact import RedactCredentials
from headroom_addons.retrieval import Retrieval
from headroom_addons.routing import Routing, apply_route
from headroom_addons.state import body_of, header_dict, header_values
from headroom_addons.suite import ASYNC_HOOKS, EVENT_HOOKS, SYNC_HOOKS, Headroom
from headroom_core.routing import Route, RouteKind
from headroom_core.wire.common import Endpoint

REPO = Path(__file__).resolve().parents[2]
PART_TYPES = [HeadroomOptions, ForwardMode, CaptureOriginal, Routing, LocalEndpoints, Optimiser,
              Retrieval, Accounting, Annotate, RedactCredentials]


def load_script():
    spec = importlib.util.spec_from_file_location("headroom_script_under_test",
                                                  REPO / "addons" / "headroom.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the script and the composite --------------------------------------------------------------

def test_the_script_gives_mitmproxy_one_addon_with_the_parts_in_request_path_order():
    module = load_script()
    assert len(module.addons) == 1 and isinstance(module.addons[0], Headroom)
    assert [type(p) for p in module.addons[0].parts] == PART_TYPES
    # mitmproxy walks `addons` attributes: the parts must not be offered every event again.
    assert not hasattr(module.addons[0], "addons")


def test_the_script_module_answers_event_hook_lookups_with_none():
    module = load_script()  # mitmproxy looks each event's hook up on the module itself too
    assert all(getattr(module, name) is None for name in EVENT_HOOKS)
    assert set(EVENT_HOOKS) <= set(hooks.all_hooks)
    assert not hasattr(module, "add_log")  # a deprecated hook name makes mitmproxy warn


@pytest.mark.parametrize("part_type", PART_TYPES)
def test_every_hook_of_every_part_is_reached(part_type):
    names = [n for n in hooks.all_hooks if callable(getattr(part_type, n, None))]
    assert names, part_type
    for name in names:
        assert name in SYNC_HOOKS + ASYNC_HOOKS, f"{part_type.__name__}.{name} is not dispatched"
        assert callable(getattr(Headroom, name, None))


class Recorder:
    def __init__(self, name: str, log: list, fail: bool = False, is_async: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail
        if is_async:
            async def request(flow):
                self.log.append((self.name, "request"))
            self.request = request

    def requestheaders(self, flow):
        self.log.append((self.name, "requestheaders"))
        if self.fail:
            raise RuntimeError("part broke")

    def request(self, flow):
        self.log.append((self.name, "request"))
        if self.fail:
            raise RuntimeError("part broke")

    def response(self, flow):
        self.log.append((self.name, "response"))


async def test_parts_run_in_order_async_ones_awaited_and_a_failure_does_not_stop_the_rest(caplog):
    log: list = []
    suite = Headroom([Recorder("a", log, fail=True), Recorder("b", log, is_async=True),
                      Recorder("c", log)])
    flow = tflow.tflow()
    with caplog.at_level(logging.ERROR, logger="headroom"):
        suite.requestheaders(flow)
        await suite.request(flow)
        suite.response(flow)
    assert log == [("a", "requestheaders"), ("b", "requestheaders"), ("c", "requestheaders"),
                   ("a", "request"), ("b", "request"), ("c", "request"),
                   ("a", "response"), ("b", "response"), ("c", "response")]
    assert caplog.text.count("Recorder.requestheaders") == 1
    assert caplog.text.count("Recorder.request") >= 1


def test_options_errors_propagate_as_with_separate_addons():
    class Strict:
        def configure(self, updated):
            raise exceptions.OptionsError("bad value")

    after = []

    class Later:
        def configure(self, updated):
            after.append(updated)

    suite = Headroom([Strict(), Later()])
    with pytest.raises(exceptions.OptionsError, match="bad value"):
        suite.configure({"x"})
    assert after == []


def test_a_bad_option_still_fails_at_configure_through_the_suite():
    suite = load_script().addons[0]
    with taddons.context(suite) as tctx:
        with pytest.raises(exceptions.OptionsError, match="--port"):
            tctx.configure(suite, headroom_port=0)


# --- one-pass header helpers --------------------------------------------------------------------

def headers(*pairs: tuple[bytes, bytes]) -> http.Headers:
    return http.Headers(list(pairs))


@pytest.mark.parametrize("fields", [
    [(b"Content-Type", b"text/event-stream"), (b"content-encoding", b"gzip")],
    [(b"content-type", b"a"), (b"X-Other", b"1"), (b"Content-Type", b"b")],
    [(b"x-other", b"1")],
    [(b"CONTENT-ENCODING", b"")],
])
def test_header_values_agree_with_headers_get(fields):
    h = headers(*fields)
    found = header_values(h, (b"content-type", b"content-encoding"))
    for name in ("content-type", "content-encoding"):
        assert found.get(name) == h.get(name)
    assert header_dict(h).get("content-type") == h.get("content-type")


@pytest.mark.parametrize("encoding", [None, "gzip", "br", "identity", "nonsense"])
def test_body_of_and_decoded_body_agree_with_get_content(encoding):
    req = tutils.treq(content=b'{"a": 1}')
    if encoding:
        req.headers["content-encoding"] = encoding
        if encoding in ("gzip", "br"):
            req.content = b'{"a": 1}'  # encoded by mitmproxy
        else:
            req.raw_content = b'{"a": 1}'
    expected = req.get_content(strict=False)
    assert body_of(req, header_dict(req.headers)) == expected
    assert decoded_body(req) == expected


def test_decoded_body_of_an_empty_message():
    req = tutils.treq(content=None)
    assert decoded_body(req) is None and body_of(req, {}) == b""


def test_has_private_headers():
    assert has_private_headers({"x-headroom-bypass": "1", "host": "h"})
    assert not has_private_headers({"x-api-key": "k", "host": "x-headroom-"})


ROUTE = Route(RouteKind.UPSTREAM, "anthropic", Endpoint.ANTHROPIC_MESSAGES, scheme="https",
              host="api.anthropic.com", port=443, path="/v1/messages",
              host_header="api.anthropic.com")


@pytest.mark.parametrize("version", [b"HTTP/1.1", b"HTTP/2.0"])
@pytest.mark.parametrize("host", [b"127.0.0.1:8787", b"api.anthropic.com"])
def test_apply_route_with_the_header_snapshot_sets_the_same_host(version, host):
    results = []
    for use_snapshot in (False, True):
        req = tutils.treq(headers=headers((b"Host", host), (b"x-api-key", b"k")),
                          http_version=version, authority=host if version == b"HTTP/2.0" else b"")
        apply_route(req, ROUTE, header_dict(req.headers) if use_snapshot else None)
        results.append((req.host_header, req.headers.fields, req.authority, req.url))
    assert results[0] == results[1]
    assert results[0][0] == "api.anthropic.com"


# --- a flow through the whole suite --------------------------------------------------------------

async def test_an_untouched_request_through_the_suite_keeps_its_bytes(tmp_path):
    module = load_script()
    suite = module.addons[0]
    body = b'{"model":"claude-x","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    with taddons.context(suite) as tctx:
        tctx.options.update(headroom_data_dir=str(tmp_path), headroom_quiet=True,
                            headroom_cache=False)
        req = tutils.treq(method=b"POST", path=b"/v1/messages", host="127.0.0.1", port=8787,
                          scheme=b"http", content=body,
                          headers=headers((b"host", b"127.0.0.1:8787"), (b"x-api-key", b"sk-1"),
                                          (b"x-headroom-note", b"n")))
        flow = tflow.tflow(req=req)
        from mitmproxy.proxy.mode_specs import ProxyMode
        flow.client_conn.proxy_mode = ProxyMode.parse("reverse:http://127.0.0.1:9@8787")
        suite.requestheaders(flow)
        await suite.request(flow)
        assert flow.request.raw_content is not None and flow.request.raw_content == body
        assert flow.request.host == "api.anthropic.com" and flow.response is None
        assert "x-headroom-note" not in flow.request.headers
        assert flow.metadata["headroom"]["provider"] == "anthropic"
        assert flow.metadata["headroom_original"] == body  # kept while in flight (mitmweb)
        flow.response = tutils.tresp(content=b'{"usage":{"input_tokens":3,"output_tokens":1}}',
                                     headers=headers((b"content-type", b"application/json")))
        suite.responseheaders(flow)
        suite.response(flow)
        assert "headroom_original" not in flow.metadata  # unchanged: the body is the original
        assert flow.request.headers["x-api-key"].startswith("[redacted by headroom: t_")
        await module.shared.core.flush()
        assert module.shared.core.stats.snapshot()["requests"]["total"] == 1
        suite.done()
