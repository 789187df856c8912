"""The loopback relay over real sockets: a fake provider behind it, httpx in front of it."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from fake_provider import FakeProvider, Reply
from headroom_core.ccr import CCRStore, marker_hash
from headroom_core.retrieval.common import TurnOutcome
from headroom_core.retrieval.conversation import ConversationStore
from headroom_core.retrieval.engine import Turn
from headroom_core.retrieval.relay import TOKEN_HEADER, Registration, Relay
from headroom_core.storage.memory import MemoryStorage
from headroom_core.upstream import UpstreamClient
from headroom_core.wire.common import Endpoint
from retrieval_clients import read_anthropic
from retrieval_streams import TOOL, a_retrieve, anthropic_body, anthropic_events

ORIGINAL = "\n".join(f"entry {i}" for i in range(500)) + "\nNEEDLE-42\n"
REQUEST = {"model": "claude-test", "max_tokens": 50, "stream": True,
           "messages": [{"role": "user", "content": "find the needle"}]}


@pytest.fixture
def provider():
    with FakeProvider() as p:
        yield p


@pytest.fixture
def ccr():
    return CCRStore(MemoryStorage())


def scripted(digest: str, delay: float = 0.0):
    """Round 1 calls headroom_retrieve; a request that carries its result gets the answer."""
    def handler(rec):
        doc = json.loads(rec.body)
        answered = any(isinstance(m.get("content"), list) and any(
            b.get("type") == "tool_result" for b in m["content"]) for m in doc["messages"])
        stream = doc.get("stream")
        if answered:
            blocks, stop, mid = [{"type": "text", "text": "Found NEEDLE-42."}], "end_turn", "msg_2"
        else:
            blocks, stop, mid = [{"type": "text", "text": "Looking."}, a_retrieve("toolu_1", digest)], "tool_use", "msg_1"
        if stream:
            return Reply(events=anthropic_events(blocks, stop, mid), event_delay=delay)
        return Reply(body=json.dumps(anthropic_body(blocks, stop, mid)).encode())
    return handler


async def start_relay(provider, ccr, outcomes: list, flow_id: str = "flow-1", **kw) -> Relay:
    relay = Relay(**kw)
    relay.start()
    await asyncio.sleep(0)  # let the server task bind its handler

    def make_turn(body: bytes) -> Turn:
        return Turn(Endpoint.ANTHROPIC_MESSAGES, "t_a", body, ccr,
                    ConversationStore(MemoryStorage()), "conv:1", 3)

    relay.register(Registration(flow_id, provider.url, make_turn, outcomes.append))
    return relay


async def test_unknown_token_is_refused(provider, ccr):
    relay = await start_relay(provider, ccr, [])
    async with httpx.AsyncClient(trust_env=False) as client:
        r = await client.post(f"http://127.0.0.1:{relay.port}/v1/messages", content=b"{}",
                              headers={TOKEN_HEADER: "not-a-flow"})
    await relay.close()
    assert r.status_code == 403 and provider.requests == []


@pytest.mark.parametrize("client", ["http1", "httpx"])
async def test_streamed_turn_through_the_relay(provider, ccr, client):
    digest = marker_hash(ccr.put("t_a", ORIGINAL, kind="log"))
    provider.handler = scripted(digest, delay=0.02)
    outcomes: list[TurnOutcome] = []
    upstream = UpstreamClient() if client == "httpx" else None  # headroom_core's httpx client
    relay = await start_relay(provider, ccr, outcomes, client=upstream)
    first_byte_at = None
    raw = b""
    async with httpx.AsyncClient(trust_env=False) as client:
        async with client.stream("POST", f"http://127.0.0.1:{relay.port}/v1/messages",
                                 content=json.dumps(REQUEST).encode(),
                                 headers={TOKEN_HEADER: "flow-1", "x-api-key": "k",
                                          "content-type": "application/json"}) as r:
            assert r.status_code == 200
            async for chunk in r.aiter_raw():
                first_byte_at = first_byte_at or time.monotonic()
                raw += chunk
    await relay.close()
    msg = read_anthropic(raw)
    assert [b["text"] for b in msg["content"]] == ["Looking.", "Found NEEDLE-42."]
    assert len(provider.requests) == 2
    assert first_byte_at < provider.requests[1].received_at, "streamed before the provider finished"
    continuation = json.loads(provider.requests[1].body)
    assert continuation["messages"][-1]["content"][0]["content"] == ORIGINAL
    for rec in provider.requests:
        assert TOKEN_HEADER not in rec.header_names()
        assert rec.header("x-api-key") == "k"
    assert outcomes[0].rounds == 1 and outcomes[0].hashes == [digest]


async def test_buffered_turn_and_keep_alive(provider, ccr):
    digest = marker_hash(ccr.put("t_a", ORIGINAL, kind="log"))
    provider.handler = scripted(digest)
    outcomes: list[TurnOutcome] = []
    relay = await start_relay(provider, ccr, outcomes, "flow-a")
    relay.register(Registration("flow-b", provider.url, lambda body: Turn(
        Endpoint.ANTHROPIC_MESSAGES, "t_a", body, ccr), outcomes.append))
    async with httpx.AsyncClient(trust_env=False) as client:
        for flow in ("flow-a", "flow-b"):
            r = await client.post(f"http://127.0.0.1:{relay.port}/v1/messages",
                                  content=json.dumps({**REQUEST, "stream": False}).encode(),
                                  headers={TOKEN_HEADER: flow})
            doc = r.json()
            assert r.status_code == 200 and TOOL not in r.text
            assert [b["text"] for b in doc["content"]] == ["Looking.", "Found NEEDLE-42."]
        again = await client.post(f"http://127.0.0.1:{relay.port}/v1/messages", content=b"{}",
                                  headers={TOKEN_HEADER: "flow-a"})
        assert again.status_code == 403, "a registration serves one request"
    await relay.close()
    assert [o.rounds for o in outcomes] == [1, 1]


async def test_client_gone_while_withheld_stops_the_turn(provider, ccr):
    digest = marker_hash(ccr.put("t_a", ORIGINAL, kind="log"))
    provider.handler = scripted(digest, delay=0.1)
    relay = await start_relay(provider, ccr, [])
    reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
    body = json.dumps(REQUEST).encode()
    writer.write(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n" + f"{TOKEN_HEADER}: flow-1\r\n".encode()
                 + f"content-length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    # The text block arrived; the retrieval call is next and will be withheld.
    head = await asyncio.wait_for(reader.readuntil(b"content_block_stop"), 10)
    assert b"200" in head.split(b"\r\n")[0]
    writer.close()
    await asyncio.sleep(1.5)  # longer than the rest of round 1
    await relay.close()
    assert len(provider.requests) == 1, "no continuation after the client left"


async def test_unreachable_provider_is_a_provider_shaped_502(ccr):
    relay = Relay()
    relay.start()
    relay.register(Registration("f", "http://127.0.0.1:9", lambda body: Turn(
        Endpoint.ANTHROPIC_MESSAGES, "t_a", body, ccr), lambda o: None))
    async with httpx.AsyncClient(trust_env=False) as client:
        r = await client.post(f"http://127.0.0.1:{relay.port}/v1/messages", content=b"{}",
                              headers={TOKEN_HEADER: "f"})
    await relay.close()
    assert r.status_code == 502 and r.json()["type"] == "error"


class CountingProvider(FakeProvider):
    connections = 0

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        await super()._serve(reader, writer)


async def test_rounds_and_turns_reuse_the_provider_connection(ccr):
    digest = marker_hash(ccr.put("t_a", ORIGINAL, kind="log"))
    with CountingProvider() as provider:
        provider.handler = scripted(digest)
        relay = await start_relay(provider, ccr, [], "flow-1")
        relay.register(Registration("flow-2", provider.url, lambda body: Turn(
            Endpoint.ANTHROPIC_MESSAGES, "t_a", body, ccr), lambda o: None))
        async with httpx.AsyncClient(trust_env=False) as client:
            for flow in ("flow-1", "flow-2"):
                r = await client.post(f"http://127.0.0.1:{relay.port}/v1/messages",
                                      content=json.dumps(REQUEST).encode(),
                                      headers={TOKEN_HEADER: flow})
                read_anthropic(r.content)
        await relay.close()
    assert len(provider.requests) == 4 and provider.connections == 1
