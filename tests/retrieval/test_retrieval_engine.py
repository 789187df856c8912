"""The engine's rounds against a scripted in-memory provider (no sockets)."""

from __future__ import annotations

import asyncio
import json

import pytest

from headroom_core.ccr import CCRStore, marker_hash
from headroom_core.retrieval.conversation import ConversationStore
from headroom_core.retrieval.engine import Turn, buffered_turn, streamed_turn
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint
from retrieval_clients import read_anthropic, read_chat, read_responses
from retrieval_streams import (TOOL, a_retrieve, anthropic_body, anthropic_events, chat_body,
                               chat_events, responses_events, responses_items)

ORIGINAL = "header\n" + "\n".join(f"row {i}" for i in range(300)) + "\nNEEDLE-42 is here\n"
SSE = [("content-type", "text/event-stream")]
JSON = [("content-type", "application/json")]


class FakeReply:
    def __init__(self, status: int, headers, chunks: list[bytes], delay: float = 0.0) -> None:
        self.status, self.headers, self._chunks, self._delay = status, headers, chunks, delay
        self.closed = False

    async def aiter_bytes(self):
        for chunk in self._chunks:
            if self._delay:
                await asyncio.sleep(self._delay)
            yield chunk

    async def aread(self) -> bytes:
        return b"".join(self._chunks)

    async def aclose(self) -> None:
        self.closed = True


class Script:
    """Answers each upstream call with the next reply; records the request bodies."""

    def __init__(self, *replies: FakeReply) -> None:
        self.replies = list(replies)
        self.bodies: list[dict] = []

    async def __call__(self, body: bytes) -> FakeReply:
        self.bodies.append(json.loads(body))
        return self.replies.pop(0)


@pytest.fixture
def stores():
    ccr = CCRStore(MemoryStorage())
    digest = marker_hash(ccr.put("t_a", ORIGINAL, kind="log"))
    return ccr, ConversationStore(MemoryStorage()), digest


def turn(endpoint: Endpoint, stores, request: dict, tenant: str = "t_a", max_rounds: int = 3) -> Turn:
    ccr, conversations, _ = stores
    return Turn(endpoint, tenant, json.dumps(request).encode(), ccr, conversations, "conv:1",
                max_rounds)


A_REQ = {"model": "claude-test", "max_tokens": 100, "stream": True, "tools": [],
         "messages": [{"role": "user", "content": "what failed?"}]}


async def collect(t: Turn, first: FakeReply, script: Script, **kw) -> bytes:
    out: list[bytes] = []

    async def send(data: bytes) -> None:
        out.append(data)

    await streamed_turn(t, first, script, send, **kw)
    return b"".join(out)


async def test_streamed_anthropic_two_rounds_sums_usage_and_sends_needle(stores):
    _, _, digest = stores
    first = FakeReply(200, SSE, anthropic_events(
        [{"type": "text", "text": "Checking."}, a_retrieve("toolu_1", digest)], "tool_use",
        input_tokens=100, output_tokens=20))
    script = Script(FakeReply(200, SSE, anthropic_events(
        [{"type": "text", "text": "NEEDLE-42 failed."}], "end_turn", "msg_2", 400, 10)))
    t = turn(Endpoint.ANTHROPIC_MESSAGES, stores, A_REQ)
    msg = read_anthropic(await collect(t, first, script))
    assert [b["text"] for b in msg["content"]] == ["Checking.", "NEEDLE-42 failed."]
    assert msg["usage"]["input_tokens"] == 500 and msg["usage"]["output_tokens"] == 30
    sent = script.bodies[0]["messages"]
    assert sent[-2]["role"] == "assistant" and sent[-2]["content"][1]["name"] == TOOL
    assert sent[-1]["content"][0]["content"] == ORIGINAL, "the needle reaches the provider"
    assert t.outcome.rounds == 1 and t.outcome.hashes == [digest]
    assert t.outcome.retrieved_bytes == len(ORIGINAL.encode())
    assert first.closed


async def test_streamed_round_bound_forces_a_text_answer(stores):
    _, _, digest = stores

    def call_again(n):
        return FakeReply(200, SSE, anthropic_events([a_retrieve(f"toolu_{n}", digest)], "tool_use",
                                                    f"msg_{n}", 10, 5))
    script = Script(call_again(2), FakeReply(200, SSE, anthropic_events(
        [{"type": "text", "text": "Done."}], "end_turn", "msg_3", 10, 5)))
    t = turn(Endpoint.ANTHROPIC_MESSAGES, stores, A_REQ, max_rounds=2)
    msg = read_anthropic(await collect(t, call_again(1), script))
    assert [b["text"] for b in msg["content"]] == ["Done."]
    assert "tool_choice" not in script.bodies[0]
    assert script.bodies[1]["tool_choice"] == {"type": "none"}, "the last allowed round"
    assert t.outcome.rounds == 2


async def test_streamed_continuation_error_ends_with_an_error_event(stores):
    _, _, digest = stores
    first = FakeReply(200, SSE, anthropic_events([a_retrieve("toolu_1", digest)], "tool_use"))
    script = Script(FakeReply(529, JSON, [b'{"type":"error","error":{"type":"overloaded_error"}}']))
    t = turn(Endpoint.ANTHROPIC_MESSAGES, stores, A_REQ)
    raw = await collect(t, first, script)
    assert TOOL.encode() not in raw
    assert raw.startswith(b"event: message_start") and b"event: error" in raw
    assert "529" in t.outcome.error


async def test_pings_while_the_call_is_withheld(stores):
    _, _, digest = stores
    first = FakeReply(200, SSE, anthropic_events([a_retrieve("toolu_1", digest)], "tool_use"))
    second = FakeReply(200, SSE, anthropic_events([{"type": "text", "text": "ok"}], "end_turn"),
                       delay=0.03)
    t = turn(Endpoint.ANTHROPIC_MESSAGES, stores, A_REQ)
    raw = await collect(t, first, Script(second), ping_interval=0.01)
    assert raw.count(b"event: ping") > 2
    read_anthropic(raw)


async def test_disconnect_while_withheld_pays_for_no_continuation(stores):
    _, _, digest = stores
    events = anthropic_events([a_retrieve("toolu_1", digest)], "tool_use")
    first = FakeReply(200, SSE, events, delay=0.05)
    script = Script()
    t = turn(Endpoint.ANTHROPIC_MESSAGES, stores, A_REQ)
    task = asyncio.ensure_future(collect(t, first, script))
    await asyncio.sleep(0.2)  # the call's events are arriving, nothing is sent for them
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert script.bodies == [] and first.closed


async def test_streamed_chat_mixed_turn_is_carried(stores):
    _, conversations, digest = stores
    first = FakeReply(200, SSE, chat_events("", [("call_r", TOOL, {"hash": digest}),
                                                 ("call_real", "bash", {"cmd": "ls"})], "tool_calls"))
    t = turn(Endpoint.OPENAI_CHAT, stores, {"model": "gpt-test", "stream": True, "messages": []})
    msg = read_chat(await collect(t, first, Script()))
    assert [c["id"] for c in msg["tool_calls"]] == ["call_real"]
    assert t.outcome.carried == 1 and t.outcome.rounds == 0
    assert conversations.record("t_a", "conv:1")["carry"] == ["call_real"]
    carried = conversations.carried("t_a", "call_real")
    assert carried["results"][0]["content"] == ORIGINAL


async def test_streamed_responses_miss_for_another_tenant(stores):
    _, _, digest = stores
    first = FakeReply(200, SSE, responses_events(
        responses_items("", [("call_r", TOOL, {"hash": digest})], "1"), "resp_1"))
    script = Script(FakeReply(200, SSE, responses_events(responses_items("Gone.", [], "2"), "resp_2")))
    t = turn(Endpoint.OPENAI_RESPONSES, stores, {"model": "gpt-test", "stream": True,
                                                 "input": "what failed?"}, tenant="t_other")
    response = read_responses(await collect(t, first, script))
    assert response["id"] == "resp_2"
    output = script.bodies[0]["input"][-1]["output"]
    assert "not available" in output and "NEEDLE" not in output
    assert t.outcome.misses == 1 and t.outcome.retrieved_bytes == 0


async def test_buffered_anthropic_returns_only_the_final_answer(stores):
    _, _, digest = stores
    body = json.dumps(anthropic_body([{"type": "text", "text": "Looking."},
                                      a_retrieve("toolu_1", digest, "NEEDLE")], "tool_use",
                                     input_tokens=50, output_tokens=5)).encode()
    script = Script(FakeReply(200, JSON, [json.dumps(anthropic_body(
        [{"type": "text", "text": "NEEDLE-42."}], "end_turn", "msg_2", 70, 6)).encode()]))
    t = turn(Endpoint.ANTHROPIC_MESSAGES, stores, {**A_REQ, "stream": False})
    status, headers, out = await buffered_turn(t, body, script)
    doc = json.loads(out)
    assert status == 200 and headers is None and TOOL.encode() not in out
    assert [b["text"] for b in doc["content"]] == ["Looking.", "NEEDLE-42."]
    assert doc["usage"]["input_tokens"] == 120 and doc["usage"]["output_tokens"] == 11
    assert "NEEDLE-42" in script.bodies[0]["messages"][-1]["content"][0]["content"]


async def test_buffered_without_retrieval_returns_the_bytes_as_received(stores):
    body = b'{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}'
    t = turn(Endpoint.OPENAI_CHAT, stores, {"model": "gpt-test", "messages": []})
    assert await buffered_turn(t, body, Script()) == (200, None, body)


async def test_buffered_continuation_error_passes_through(stores):
    _, _, digest = stores
    body = json.dumps(chat_body(None, [("call_r", TOOL, {"hash": digest})], "tool_calls")).encode()
    script = Script(FakeReply(500, JSON + [("x-request-id", "r1")], [b'{"error":{"message":"boom"}}']))
    t = turn(Endpoint.OPENAI_CHAT, stores, {"model": "gpt-test", "messages": []})
    status, headers, out = await buffered_turn(t, body, script)
    assert status == 500 and ("x-request-id", "r1") in headers and b"boom" in out
