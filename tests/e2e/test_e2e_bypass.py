"""`x-headroom-bypass` end to end through `mitmdump -s addons/headroom.py` and `headroom proxy`:
a bypassed request reaches the provider byte for byte (no compression, no retrieve tool), the
header never does, and the next request without it is optimised again."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import workloads as W  # noqa: E402
from fake_provider import Reply, anthropic_events, openai_chat_events, openai_response_events  # noqa: E402
from headroom_core.compression.markers import find_markers, make_marker  # noqa: E402
from test_e2e_compression import A, C, HEADERS, R, conversation, outputs_of, tool_names  # noqa: E402

pytestmark = pytest.mark.e2e

LOG = W.incident_log(seed=51, lines=700)
EVENTS = {A: anthropic_events, C: openai_chat_events, R: openai_response_events}


def post(client: httpx.Client, path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
    resp = client.post(path, content=body, headers={"content-type": "application/json",
                                                    **HEADERS[path], **headers})
    assert resp.status_code == 200, resp.text
    return resp


def assert_untouched(provider, body: bytes) -> None:
    got = provider.requests[-1]
    assert got.body == body
    assert not [k for k in got.header_names() if k.startswith("x-headroom-")]


@pytest.mark.parametrize("path", [A, C, R])
@pytest.mark.parametrize("name,value", [("x-headroom-bypass", "1"), ("X-Headroom-Bypass", "true"),
                                        ("x-headroom-bypass", "yes")])
def test_bypassed_request_is_forwarded_byte_for_byte(client, provider, path, name, value):
    body = json.dumps(conversation(path, [(LOG.tool_name, LOG.tool_args, LOG.text)])).encode()
    post(client, path, body, {name: value})
    assert_untouched(provider, body)
    assert provider.requests[-1].header("x-api-key" if path == A else "authorization")


@pytest.mark.parametrize("path", [A, C, R])
def test_bypass_is_per_request(client, provider, path):
    body = json.dumps(conversation(path, [(LOG.tool_name, LOG.tool_args, LOG.text)])).encode()
    post(client, path, body, {"x-headroom-bypass": "0"})  # not a true value: optimised
    first = provider.requests[-1].body
    assert len(first) < len(body) / 3
    post(client, path, body, {"x-headroom-bypass": "1"})
    assert_untouched(provider, body)
    post(client, path, body, {})
    assert provider.requests[-1].body == first  # optimised again, the same bytes as before


@pytest.mark.parametrize("path", [A, C, R])
def test_bypassed_stream_passes_through(client, provider, path):
    doc = conversation(path, [(LOG.tool_name, LOG.tool_args, LOG.text)])
    doc["stream"] = True
    body = json.dumps(doc).encode()
    events = EVENTS[path]()
    provider.script(Reply(events=events))
    resp = post(client, path, body, {"x-headroom-bypass": "1"})
    assert resp.content == b"".join(events)
    assert_untouched(provider, body)


@pytest.mark.parametrize("path", [A, C, R])
def test_bypass_adds_no_retrieve_tool_to_a_history_with_markers(client, provider, path):
    """A history already carrying a marker would get headroom_retrieve declared; bypassed,
    it goes out exactly as the client wrote it."""
    marker = make_marker("12 of 20 lines omitted", "0123456789abcdef")
    doc = conversation(path, [("Bash", {"command": "make test"}, "ok\n" + marker)])
    body = json.dumps(doc).encode()
    post(client, path, body, {"x-headroom-bypass": "1"})
    assert_untouched(provider, body)
    post(client, path, body, {})  # without bypass the tool comes with the marker
    got = json.loads(provider.requests[-1].body)
    assert "headroom_retrieve" in tool_names(path, got)
    assert find_markers(outputs_of(path, got)[0]) == ["0123456789abcdef"]
