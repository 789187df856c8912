"""Streamed answers assemble into the unstreamed body, and stored bodies replay as valid streams."""

from __future__ import annotations

import copy
import json

import pytest

from headroom_core.spend.stream_assembly import StreamAssembler, assemble_sse, replay_sse
from headroom_core.sse import SSEParser, encode_event
from headroom_core.wire.common import Endpoint

import stream_samples as S

A, C, R = Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES

ROUND_TRIPS = [
    (A, S.ANTHROPIC_TEXT), (A, S.ANTHROPIC_TOOLS_AND_THINKING),
    (C, S.CHAT_TEXT), (C, S.CHAT_TOOL_CALLS_TWO_CHOICES), (R, S.RESPONSES),
]


@pytest.mark.parametrize("endpoint,body", ROUND_TRIPS)
def test_assemble_of_replay_is_identity(endpoint, body):
    original = copy.deepcopy(body)
    stream = replay_sse(endpoint, body)
    assert body == original  # replay must not mutate what the cache holds
    assert assemble_sse(endpoint, stream) == body


@pytest.mark.parametrize("endpoint,body", ROUND_TRIPS)
def test_replay_survives_arbitrary_chunking(endpoint, body):
    stream = replay_sse(endpoint, body)
    parser, asm = SSEParser(), StreamAssembler(endpoint)
    for i in range(0, len(stream), 7):
        asm.feed_all(parser.feed(stream[i:i + 7]))
    asm.feed_all(parser.close())
    assert asm.result() == body


def test_anthropic_replay_event_order():
    events = SSEParser().feed(replay_sse(A, S.ANTHROPIC_TOOLS_AND_THINKING))
    names = [e.event for e in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names.count("content_block_start") == names.count("content_block_stop") == 5
    for e in events:  # the data's type always matches the event name
        assert json.loads(e.data)["type"] == e.event
    start = json.loads(events[0].data)["message"]
    assert start["content"] == [] and start["stop_reason"] is None


def test_chat_replay_ends_with_usage_chunk_and_done():
    events = SSEParser().feed(replay_sse(C, S.CHAT_TEXT))
    assert events[-1].data == "[DONE]" and all(e.event is None for e in events)
    last = json.loads(events[-2].data)
    assert last["choices"] == [] and last["usage"] == S.CHAT_TEXT["usage"]
    assert all(json.loads(e.data)["object"] == "chat.completion.chunk" for e in events[:-1])


def test_responses_replay_sequence_numbers_and_terminal_event():
    events = SSEParser().feed(replay_sse(R, S.RESPONSES))
    payloads = [json.loads(e.data) for e in events]
    assert [p["sequence_number"] for p in payloads] == list(range(len(payloads)))
    assert events[0].event == "response.created" and events[-1].event == "response.completed"
    assert payloads[0]["response"]["status"] == "in_progress"


def _anthropic_provider_stream() -> bytes:
    """A stream as Anthropic sends it: text and tool input in fragments, pings, usage at the end."""
    ev = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_x", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 25, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hel"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "lo"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "{\"x\": "}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1,
                                 "delta": {"type": "input_json_delta", "partial_json": "1}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use",
                                                              "stop_sequence": None},
                           "usage": {"output_tokens": 15}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return b"".join(encode_event(n, json.dumps(p)) for n, p in ev)


def test_anthropic_provider_stream_assembles():
    body = assemble_sse(A, _anthropic_provider_stream())
    assert body["content"] == [{"type": "text", "text": "Hello"},
                               {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"x": 1}}]
    assert body["stop_reason"] == "tool_use"
    assert body["usage"] == {"input_tokens": 25, "cache_creation_input_tokens": 0,
                             "cache_read_input_tokens": 0, "output_tokens": 15}


def test_chat_provider_stream_with_fragmented_tool_call():
    chunks = [
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "obfuscation": "abc", "choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                                                                   "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                                                                   "function": {"name": "f", "arguments": ""}}]},
                                            "logprobs": None, "finish_reason": None}], "usage": None},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]},
                      "logprobs": None, "finish_reason": None}], "usage": None},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "2}"}}]},
                      "logprobs": None, "finish_reason": None}], "usage": None},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}],
         "usage": None},
        {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
         "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
    ]
    raw = b"".join(encode_event(None, json.dumps(c)) for c in chunks) + b"data: [DONE]\n\n"
    body = assemble_sse(C, raw)
    assert body["object"] == "chat.completion" and "obfuscation" not in body
    msg = body["choices"][0]["message"]
    assert msg["content"] is None
    assert msg["tool_calls"] == [{"id": "call_1", "type": "function",
                                  "function": {"name": "f", "arguments": "{\"a\":2}"}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] == 12


@pytest.mark.parametrize("endpoint,body", ROUND_TRIPS)
def test_truncated_or_failed_streams_give_no_result(endpoint, body):
    stream = replay_sse(endpoint, body)
    events = SSEParser().feed(stream)
    assert StreamAssembler(endpoint).feed_all(events[:-1]).result() is None
    bad = StreamAssembler(endpoint)
    bad.feed_all(events[:2])
    error = encode_event("error", json.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                                         "message": "x"}}))
    bad.feed_all(SSEParser().feed(error))
    bad.feed_all(events[2:])
    assert bad.result() is None


def test_unknown_endpoint_is_refused():
    with pytest.raises(ValueError):
        StreamAssembler(Endpoint.ANTHROPIC_COUNT_TOKENS)
    with pytest.raises(ValueError):
        replay_sse("openai.other", {})
