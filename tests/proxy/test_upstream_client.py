"""The async upstream client: buffered and streamed calls against the fake provider."""

from __future__ import annotations

import time

from fake_provider import FakeProvider, Reply, anthropic_events
from headroom_core.upstream import UpstreamClient, forwardable


def test_forwardable_drops_hop_by_hop_and_private_headers():
    kept = forwardable([("Host", "x"), ("x-api-key", "k"), ("Content-Length", "3"),
                        ("X-Headroom-Bypass", "1"), ("anthropic-version", "v"),
                        ("Connection", "keep-alive")])
    assert kept == [("x-api-key", "k"), ("anthropic-version", "v")]


async def test_send_returns_status_headers_and_exact_body(fake_provider):
    fake_provider.script(Reply(status=429, headers=[("retry-after", "3")], body=b'{"e":1}'))
    client = UpstreamClient()
    try:
        resp = await client.send("POST", fake_provider.url + "/v1/messages",
                                 {"x-api-key": "k", "x-headroom-bypass": "1"}, b'{"a": 1}')
    finally:
        await client.aclose()
    assert resp.status == 429 and resp.body == b'{"e":1}'
    assert ("retry-after", "3") in resp.headers
    got = fake_provider.requests[0]
    assert got.body == b'{"a": 1}'
    assert got.header("x-api-key") == "k" and got.header("x-headroom-bypass") is None
    assert got.header("user-agent") is None  # nothing of httpx's own


async def test_stream_yields_events_as_they_come():
    with FakeProvider() as provider:
        provider.script(Reply(events=anthropic_events(), event_delay=0.15))
        client = UpstreamClient()
        arrivals = []
        try:
            async with client.stream("POST", provider.url + "/v1/messages", {}, b"{}") as resp:
                assert resp.status_code == 200
                async for chunk in resp.aiter_raw():
                    arrivals.append((time.monotonic(), chunk))
        finally:
            await client.aclose()
    assert len(arrivals) >= 5
    assert arrivals[-1][0] - arrivals[0][0] > 0.5  # not buffered to the end
    assert b"".join(c for _, c in arrivals) == b"".join(anthropic_events())
