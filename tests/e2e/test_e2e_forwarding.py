"""End to end through a real proxy process (mitmdump -s addons/headroom.py, and headroom proxy):
byte fidelity, routing, private headers, streaming, upstream errors, odd bodies."""

from __future__ import annotations

import gzip
import json
import os
import time

import httpx
import pytest

from fake_provider import (Reply, anthropic_events, openai_chat_events, openai_response_events,
                           sse)

pytestmark = pytest.mark.e2e

# Odd spacing, a float literal, escaped and raw non-ASCII, key order a re-encoder would lose.
ANTHROPIC_BODY = ('{"model":  "claude-sonnet-4-5", "max_tokens":1024.0,"temperature": 1e0,'
                  '"messages":[{"role":"user","content":"h\\u00e9llo — ünïcode"}],'
                  '"zeta":1,"alpha":2}').encode()
OPENAI_BODY = ('{"model":"gpt-4o","messages":[{"role":"system","content":"be brief"},'
               '{"role":"user","content":"hi"}],"stream":false, "n": 1.50}').encode()
RESPONSES_BODY = b'{"model":"gpt-4o","input":"hi","store":false}'


def sent_headers(resp: httpx.Response) -> list[tuple[str, str]]:
    return [(k.decode(), v.decode()) for k, v in resp.request.headers.raw]


def without(headers, *names):
    return [(k, v) for k, v in headers if k.lower() not in names]


@pytest.mark.parametrize("path,body,extra", [
    ("/v1/messages", ANTHROPIC_BODY, {"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"}),
    ("/v1/chat/completions", OPENAI_BODY, {"authorization": "Bearer sk-test"}),
    ("/v1/responses", RESPONSES_BODY, {"authorization": "Bearer sk-test"}),
])
def test_untouched_request_is_forwarded_byte_for_byte(client, provider, path, body, extra):
    headers = {"content-type": "application/json", "x-custom": "kept", **extra}
    resp = client.post(path, content=body, headers=headers)
    assert resp.status_code == 200
    got = provider.requests[-1]
    assert got.body == body
    # Same headers, same order, same spelling; only Host names the upstream.
    assert without(got.headers, "host") == without(sent_headers(resp), "host")
    assert got.header("host") == provider.url.removeprefix("http://")


def test_routes_and_prefixes(client, provider):
    client.post("/v1/messages?beta=true", content=b"{}")
    client.post("/v1/chat/completions", content=b"{}")
    client.get("/v1/models")
    client.get("/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert [r.target for r in provider.requests] == [
        "/v1/messages?beta=true", "/openai/v1/chat/completions", "/openai/v1/models",
        "/v1/models"]


def test_private_headers_never_reach_the_provider(client, provider):
    resp = client.post("/v1/messages", content=ANTHROPIC_BODY,
                       headers={"x-headroom-bypass": "1", "X-Headroom-Trace": "abc",
                                "x-api-key": "k"})
    assert resp.status_code == 200
    got = provider.requests[-1]
    assert not [k for k in got.header_names() if k.startswith("x-headroom-")]
    assert got.body == ANTHROPIC_BODY and got.header("x-api-key") == "k"


@pytest.mark.parametrize("path,events", [
    ("/v1/messages", anthropic_events(pieces=("a", "b", "c", "d"))),
    ("/v1/chat/completions", openai_chat_events(pieces=("a", "b", "c"))),
    ("/v1/responses", openai_response_events(pieces=("a", "b"))),
])
def test_sse_reaches_the_client_event_by_event(client, provider, path, events):
    delay = 0.3
    provider.script(Reply(events=events, event_delay=delay))
    arrivals: list[tuple[float, bytes]] = []
    with client.stream("POST", path, content=b'{"stream":true}') as resp:
        assert resp.headers["content-type"] == "text/event-stream"
        for chunk in resp.iter_raw():
            arrivals.append((time.monotonic(), chunk))
    assert b"".join(c for _, c in arrivals) == b"".join(events)
    provider_gap = delay * (len(events) - 1)
    client_gap = arrivals[-1][0] - arrivals[0][0]
    # Buffered, the whole stream would arrive at once (gap ~0); streamed, the client sees the
    # provider's pacing.
    assert client_gap > 0.6 * provider_gap
    first_event_end = arrivals[0][0]
    assert arrivals[-1][0] - first_event_end > delay


ERROR_HEADERS = [("request-id", "req_011abc"), ("retry-after", "17"),
                 ("anthropic-ratelimit-requests-remaining", "0"),
                 ("anthropic-ratelimit-tokens-reset", "2026-01-01T00:00:00Z"),
                 ("x-ratelimit-remaining-requests", "0")]


@pytest.mark.parametrize("status", [400, 401, 429, 500, 529])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_pass_through_with_their_headers(client, provider, status, stream):
    body = json.dumps({"type": "error", "error": {"type": "rate_limit_error",
                                                  "message": "slow down"}}).encode()
    provider.script(Reply(status=status, headers=ERROR_HEADERS, body=body))
    req = b'{"stream":true}' if stream else b'{"stream":false}'
    with client.stream("POST", "/v1/messages", content=req) as resp:
        data = resp.read()
    assert resp.status_code == status and data == body
    for k, v in ERROR_HEADERS:
        assert resp.headers.get(k) == v


def test_error_status_with_an_event_stream_passes_through(client, provider):
    events = [sse("error", {"type": "error", "error": {"type": "overloaded_error",
                                                       "message": "Overloaded"}})]
    provider.script(Reply(status=529, headers=ERROR_HEADERS, events=events))
    with client.stream("POST", "/v1/messages", content=b'{"stream":true}') as resp:
        data = resp.read()
    assert resp.status_code == 529 and data == b"".join(events)
    assert resp.headers["request-id"] == "req_011abc"


def test_mid_stream_error_event_passes_through(client, provider):
    events = anthropic_events()[:4] + [sse("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}})]
    provider.script(Reply(events=events, headers=[("request-id", "req_9")]))
    with client.stream("POST", "/v1/messages", content=b'{"stream":true}') as resp:
        data = resp.read()
    assert resp.status_code == 200 and data == b"".join(events)


@pytest.mark.parametrize("name,body", [
    ("malformed", b'{"model": "claude", "messages": [ {"role": "user", '),
    ("empty", b""),
    ("binary", os.urandom(65536)),
    ("not utf-8", b'{"model": "\xff\xfe"}'),
    ("deep", b"[" * 100000 + b"]" * 100000),
])
def test_odd_bodies_pass_through_untouched(client, provider, name, body):
    resp = client.post("/v1/messages", content=body, headers={"content-type": "application/json"})
    assert resp.status_code == (200 if not body else 400)  # the provider's verdict, relayed
    assert provider.requests[-1].body == body


def test_huge_body_passes_through_untouched(client, provider):
    text = "x" * 1000
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 10,
           "messages": [{"role": "user", "content": text}] * 21000}
    body = json.dumps(doc).encode()
    assert len(body) >= 20 * 1024 * 1024
    resp = client.post("/v1/messages", content=body, timeout=120)
    assert resp.status_code == 200
    assert provider.requests[-1].body == body


def test_gzip_event_stream_passes_through(client, provider):
    events = anthropic_events(output_tokens=11)
    provider.script(Reply(events=events, gzip=True, event_delay=0.05))
    with client.stream("POST", "/v1/messages", content=b'{"stream":true}') as resp:
        raw = b"".join(resp.iter_raw())
    assert resp.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"".join(events)


def test_gzip_json_response_passes_through(client, provider):
    body = json.dumps({"id": "x", "usage": {"input_tokens": 3, "output_tokens": 4}}).encode()
    provider.script(Reply(body=body, gzip=True))
    with client.stream("POST", "/v1/messages", content=b"{}") as resp:
        raw = b"".join(resp.iter_raw())
    assert gzip.decompress(raw) == body
