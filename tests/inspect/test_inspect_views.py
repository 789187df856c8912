"""addons/inspect.py: comment, mark, original capture, content views — on mitmproxy 11 and 12.

Run the same file with /work/main/.venv (11.0.2) and /work/main/.venv312 (12.3.1).
"""

from __future__ import annotations

import io
import json

import pytest
from mitmproxy import contentviews, http
from mitmproxy import io as mio
from mitmproxy.addons.view import View
from mitmproxy.test import taddons, tflow

from headroom_addons import inspect as hinspect

TOOL_OUTPUT = "\n".join(f"line {i}: ok" for i in range(40)) + "\nERROR: disk full"
SHRUNK_OUTPUT = "ERROR: disk full\n[headroom: 40 of 41 lines omitted — call headroom_retrieve(hash=\"abc\")]"


def body(tool_text: str) -> bytes:
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 1.0, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1",
                                      "content": tool_text}]}]}
    return json.dumps(doc, ensure_ascii=False).encode()


META = {"tokens_before": 41230, "tokens_after": 7402, "cache": "miss",
        "transforms": [{"kind": "json", "count": 2}, {"kind": "log", "count": 1},
                       {"kind": "json", "count": 1}]}


@pytest.mark.parametrize("meta, expected", [
    (META, "-82% 41,230→7,402 tok · json×3 log×1 · cache miss"),
    ({"tokens_before": 900, "tokens_after": 900, "cache": "hit"}, "900 tok · cache hit"),
    ({"tokens_before": 10, "cache": "off", "transforms": {"fit": 1}}, "10 tok · fit×1"),
    ({"tokens_before": 5000, "tokens_after": 1000, "retrieval_rounds": 2},
     "-80% 5,000→1,000 tok · retrieve×2"),
    ({"tokens_before": 3, "error": "compressor\ntimed out"}, "3 tok · fail-open: compressor timed out"),
    ({"refused": "rate_limit"}, "refused: rate_limit"),
    ({}, ""),
])
def test_summary_comment(meta, expected):
    assert hinspect.summary_comment(meta) == expected


def test_readable_lines_expand_multiline_strings_and_keep_non_ascii():
    lines = hinspect.readable_lines(json.dumps({"a": [{"t": "x\ny"}, 1.5, "é"], "b": {}},
                                               ensure_ascii=False).encode())
    assert lines == ['a:', '  -', '    t: |', '      x', '      y', '  - 1.5', '  - "é"', 'b: {}']
    assert hinspect.readable_lines(b"not json\nat all") == ["not json", "at all"]


def test_json_text_inside_a_string_is_expanded():
    doc = {"content": json.dumps([{"id": 1}, {"id": 2}]), "other": "[not json", "n": "[]"}
    assert hinspect.readable_lines(json.dumps(doc).encode()) == [
        "content: (JSON text)", "  -", "    id: 1", "  -", "    id: 2",
        'other: "[not json"', 'n: "[]"']


def optimise(flow: http.HTTPFlow) -> None:
    """Stands in for the optimiser between the two inspect addons."""
    flow.request.content = body(SHRUNK_OUTPUT)
    flow.metadata["headroom"] = dict(META)


def run_flow(capture, annotate, changed: bool = True) -> http.HTTPFlow:
    flow = tflow.tflow()
    flow.request.method = "POST"
    flow.request.path = "/v1/messages"
    flow.request.content = body(TOOL_OUTPUT)
    capture.request(flow)
    if changed:
        optimise(flow)
    else:
        flow.metadata["headroom"] = {"tokens_before": 800, "tokens_after": 800, "cache": "miss"}
    annotate.request(flow)
    flow.response = tflow.tresp()
    annotate.response(flow)
    return flow


def changed(lines: list[str], sign: str, text: str) -> bool:
    """A diff line removing (`-`) or adding (`+`) exactly this rendered text."""
    return any(line.startswith(sign) and line[1:].strip() == text for line in lines)


def render(view_name: str, flow: http.HTTPFlow) -> str:
    """Render the request through mitmproxy's own public content-view entry point."""
    if hasattr(contentviews, "prettify_message"):  # 12
        return contentviews.prettify_message(flow.request, flow, view_name=view_name).text
    _, lines, error = contentviews.get_message_content_view(view_name, flow.request, flow)  # 11
    assert error is None
    return "\n".join("".join(text for _, text in line) for line in lines)


@pytest.fixture
def addons():
    capture = hinspect.CaptureOriginal()
    annotate = hinspect.Annotate(capture)
    with taddons.context(capture, annotate):
        yield capture, annotate


def test_comment_mark_and_views(addons):
    flow = run_flow(*addons)
    assert flow.comment == "-82% 41,230→7,402 tok · json×3 log×1 · cache miss"
    assert flow.marked == hinspect.MARK
    assert flow.metadata[hinspect.ORIGINAL_KEY] == body(TOOL_OUTPUT)

    original = render("headroom original", flow)
    assert "line 17: ok" in original and "ERROR: disk full" in original
    assert "max_tokens: 1.0" in original

    diff = render("headroom diff", flow)
    assert diff.startswith("-82% 41,230→7,402 tok")
    assert "--- original (client)" in diff and "+++ sent (provider)" in diff
    lines = diff.split("\n")
    assert changed(lines, "-", "line 17: ok")
    assert changed(lines, "+", '[headroom: 40 of 41 lines omitted — call headroom_retrieve(hash="abc")]')
    # the kept error line is context, not a change
    assert not changed(lines, "-", "ERROR: disk full")


def test_unchanged_flow_keeps_no_copy_and_is_not_marked(addons):
    flow = run_flow(*addons, changed=False)
    assert flow.comment == "800 tok · cache miss"
    assert not flow.marked
    assert hinspect.ORIGINAL_KEY not in flow.metadata
    assert "unchanged" in render("headroom diff", flow)
    assert "line 3: ok" in render("headroom original", flow)


def test_response_view_says_requests_only(addons):
    flow = run_flow(*addons)
    if hasattr(contentviews, "prettify_message"):
        text = contentviews.prettify_message(flow.response, flow, view_name="headroom diff").text
    else:
        _, lines, _ = contentviews.get_message_content_view("headroom diff", flow.response, flow)
        text = "\n".join("".join(t for _, t in line) for line in lines)
    assert "requests only" in text


def test_a_person_comment_is_kept(addons):
    capture, annotate = addons
    flow = tflow.tflow()
    flow.comment = "looked at this"
    flow.metadata["headroom"] = dict(META)
    annotate.response(flow)
    assert flow.comment == "-82% 41,230→7,402 tok · json×3 log×1 · cache miss · looked at this"
    annotate.response(flow)  # idempotent
    assert flow.comment.count("json×3") == 1


def test_originals_kept_for_last_n_flows_only():
    capture = hinspect.CaptureOriginal(keep=3)
    annotate = hinspect.Annotate(capture)
    with taddons.context(capture, annotate):
        flows = [run_flow(capture, annotate) for _ in range(5)]
    kept = [hinspect.ORIGINAL_KEY in f.metadata for f in flows]
    assert kept == [False, False, True, True, True]
    assert "not kept" in render("headroom original", flows[0])


def test_originals_bounded_by_bytes():
    capture = hinspect.CaptureOriginal(keep=100, keep_bytes=len(body(TOOL_OUTPUT)) * 2)
    annotate = hinspect.Annotate(capture)
    with taddons.context(capture, annotate):
        flows = [run_flow(capture, annotate) for _ in range(4)]
    assert [hinspect.ORIGINAL_KEY in f.metadata for f in flows] == [False, False, True, True]


def test_metadata_serialises_and_views_work_on_reloaded_flow(addons):
    flow = run_flow(*addons)
    buf = io.BytesIO()
    mio.FlowWriter(buf).add(flow)
    buf.seek(0)
    (loaded,) = list(mio.FlowReader(buf).stream())
    assert loaded.comment == flow.comment and loaded.marked == flow.marked
    assert loaded.metadata["headroom"]["tokens_after"] == 7402
    assert changed(render("headroom diff", loaded).split("\n"), "-", "line 17: ok")


def test_web_ui_port_is_refused():
    from mitmproxy.tools.web.webaddons import WebAddon

    capture = hinspect.CaptureOriginal()
    with taddons.context(capture, WebAddon()) as tctx:
        tctx.options.update(web_port=18081)
        for host in ("127.0.0.1", "localhost"):
            flow = tflow.tflow()
            flow.request.host, flow.request.port = host, 18081
            capture.requestheaders(flow)
            assert flow.response is not None and flow.response.status_code == 403
        connect = tflow.tflow()
        connect.request.method = "CONNECT"
        connect.request.host, connect.request.port = "127.0.0.1", 18081
        capture.http_connect(connect)
        assert connect.response.status_code == 403
        other = tflow.tflow()
        other.request.host, other.request.port = "127.0.0.1", 18082
        capture.requestheaders(other)
        assert other.response is None


def test_web_port_check_is_inert_without_mitmweb(addons):
    capture, _ = addons
    flow = tflow.tflow()
    flow.request.host, flow.request.port = "127.0.0.1", 8081
    capture.requestheaders(flow)
    assert flow.response is None


def test_mitmweb_flow_list_is_trimmed_to_the_cap():
    capture = hinspect.CaptureOriginal()
    annotate = hinspect.Annotate(capture, max_web_flows=10)
    view = View()
    with taddons.context(capture, annotate, view) as tctx:
        tctx.master.view = view
        flows = []
        for _ in range(11):
            f = tflow.tflow(resp=True)
            view.add([f])
            flows.append(f)
            annotate.response(f)
        ids = {f.id for f in view}
        assert len(ids) == 9  # trimmed to 90 % of the cap
        assert flows[0].id not in ids and flows[1].id not in ids and flows[-1].id in ids


def test_diff_is_the_default_view_of_a_changed_request_only(addons):
    changed_flow = run_flow(*addons)
    assert render("auto", changed_flow).startswith("-82% 41,230→7,402 tok")
    unchanged = run_flow(*addons, changed=False)
    auto = render("auto", unchanged)
    assert "headroom" not in auto and '"tool_result"' in auto  # mitmproxy's own JSON view


def test_forward_passthrough_and_replayed_flows(addons):
    capture, _ = addons
    other = tflow.tflow()
    other.request.method = "POST"
    other.metadata[hinspect.FORWARD_KEY] = "passthrough"  # another host through forward mode
    capture.request(other)
    assert hinspect.ORIGINAL_KEY not in other.metadata
    flow = tflow.tflow()
    flow.request.method = "POST"
    flow.request.content = body(TOOL_OUTPUT)
    capture.request(flow)
    capture.request(flow)  # replay: counted once
    assert capture.kept_bytes == len(body(TOOL_OUTPUT))
