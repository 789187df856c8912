"""The three stream splicers, driven as the engine drives them, with every byte split point."""

from __future__ import annotations

import json

import pytest

from headroom_core.retrieval.anthropic_stream import AnthropicSplicer
from headroom_core.retrieval.openai_chat_stream import ChatSplicer
from headroom_core.retrieval.openai_responses_stream import ResponsesSplicer
from headroom_core.sse import SSEParser
from retrieval_clients import read_anthropic, read_chat, read_responses
from retrieval_streams import (TOOL, a_retrieve, anthropic_events, chat_events, responses_events,
                               responses_items)

H1 = "abcdef0123456789"
H2 = "0123456789abcdef"


def run(splicer, rounds: list[list[bytes]], cut: int | None = None, override: str | None = None):
    """Feed each round (its bytes cut in two at `cut`) and close the message; (bytes, facts)."""
    out: list[bytes] = []
    facts = []
    for n, evs in enumerate(rounds):
        raw = b"".join(evs)
        pieces = [raw] if cut is None else [raw[:cut], raw[cut:]]
        parser = SSEParser()
        for piece in pieces:
            for ev in parser.feed(piece):
                out += splicer.feed(ev)
        for ev in parser.close():
            out += splicer.feed(ev)
        assert splicer.round_done
        facts.append(splicer.end_round())
        if n < len(rounds) - 1:
            splicer.begin_round()
    out += splicer.finish(override)
    return b"".join(out), facts


def every_cut(make, rounds, stride: int = 1):
    """Same output wherever the bytes are split (stride 1: every split point)."""
    expected, facts = run(make(), rounds)
    longest = max(len(b"".join(r)) for r in rounds)
    for cut in range(0, longest + 1, stride):
        got, _ = run(make(), rounds, cut)
        assert got == expected, f"split at byte {cut} changed the output"
    return expected, facts


# --- Anthropic -------------------------------------------------------------------------------

A_ROUND1 = anthropic_events([
    {"type": "thinking", "thinking": "The file was shortened; fetch it.", "signature": "c2lnbmF0dXJl"},
    {"type": "text", "text": "Let me read the full output."},
    a_retrieve("toolu_r1", H1)], "tool_use", "msg_1", input_tokens=100, output_tokens=30,
    cache_read=40)
A_ROUND2 = anthropic_events([{"type": "text", "text": "The needle is NEEDLE-42."}], "end_turn",
                            "msg_2", input_tokens=300, output_tokens=12, cache_read=140)


def test_anthropic_two_rounds_every_split_point():
    raw, facts = every_cut(AnthropicSplicer, [A_ROUND1, A_ROUND2])
    msg = read_anthropic(raw)
    assert msg["id"] == "msg_1"
    assert [b["type"] for b in msg["content"]] == ["thinking", "text", "text"]
    assert msg["content"][0] == {"type": "thinking", "thinking": "The file was shortened; fetch it.",
                                 "signature": "c2lnbmF0dXJl"}
    assert msg["content"][2]["text"] == "The needle is NEEDLE-42."
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"]["input_tokens"] == 400
    assert msg["usage"]["output_tokens"] == 42
    assert msg["usage"]["cache_read_input_tokens"] == 180
    first = facts[0]
    assert [(c.call_id, json.loads(c.arguments)) for c in first.calls] == [("toolu_r1", {"hash": H1})]
    assert first.stop == "tool_use" and first.real_calls == () and first.complete
    # The assistant turn to send back keeps thinking + signature and the call's parsed input.
    assert first.assistant[0]["signature"] == "c2lnbmF0dXJl"
    assert first.assistant[2] == {"type": "tool_use", "id": "toolu_r1", "name": TOOL,
                                  "input": {"hash": H1}}
    assert facts[1].calls == ()


def test_anthropic_without_retrieval_is_byte_identical():
    round1 = anthropic_events([{"type": "text", "text": "Hello there, nothing to fetch."}], "end_turn")
    raw, facts = every_cut(AnthropicSplicer, [round1], stride=7)
    assert raw == b"".join(round1)
    assert facts[0].calls == ()


def test_anthropic_mixed_turn_keeps_real_call_renumbered():
    round1 = anthropic_events([{"type": "text", "text": "Two things."}, a_retrieve("toolu_r1", H1),
                               {"type": "tool_use", "id": "toolu_real", "name": "bash",
                                "input": {"cmd": "ls"}}], "tool_use")
    raw, facts = every_cut(AnthropicSplicer, [round1], stride=7)
    msg = read_anthropic(raw)
    assert [b["type"] for b in msg["content"]] == ["text", "tool_use"]
    assert msg["content"][1]["id"] == "toolu_real" and msg["content"][1]["input"] == {"cmd": "ls"}
    assert msg["stop_reason"] == "tool_use"
    assert facts[0].real_calls == ("toolu_real",)


def test_anthropic_three_rounds_and_dropped_call_override():
    r1 = anthropic_events([a_retrieve("toolu_1", H1)], "tool_use", "msg_1", 10, 5)
    r2 = anthropic_events([{"type": "text", "text": "More."}, a_retrieve("toolu_2", H2)],
                          "tool_use", "msg_2", 20, 6)
    r3 = anthropic_events([a_retrieve("toolu_3", H2)], "tool_use", "msg_3", 30, 7)
    raw, facts = every_cut(AnthropicSplicer, [r1, r2, r3], stride=7)
    assert [len(f.calls) for f in facts] == [1, 1, 1]
    raw, _ = run(AnthropicSplicer(), [r1, r2, r3], override="end_turn")
    msg = read_anthropic(raw)
    assert [b["text"] for b in msg["content"]] == ["More."]
    assert msg["stop_reason"] == "end_turn"
    assert msg["usage"]["input_tokens"] == 60 and msg["usage"]["output_tokens"] == 18


def test_anthropic_truncated_call_is_incomplete():
    events = anthropic_events([a_retrieve("toolu_1", H1)], "max_tokens")
    cut = [e for e in events if b"content_block_stop" not in e]
    splicer = AnthropicSplicer()
    parser = SSEParser()
    for ev in parser.feed(b"".join(cut)):
        splicer.feed(ev)
    assert not splicer.end_round().complete


# --- OpenAI chat -----------------------------------------------------------------------------

C_ROUND1 = chat_events("Let me check.", [("call_r1", TOOL, {"hash": H1})], "tool_calls",
                       "chatcmpl-1", 50, 10)
C_ROUND2 = chat_events("Found NEEDLE-42 in it.", [], "stop", "chatcmpl-2", 200, 8)


def test_chat_two_rounds_every_split_point():
    raw, facts = every_cut(ChatSplicer, [C_ROUND1, C_ROUND2])
    msg = read_chat(raw)
    assert msg["id"] == "chatcmpl-1"
    assert msg["content"] == "Let me check.\n\nFound NEEDLE-42 in it."
    assert msg["tool_calls"] == [] and msg["finish_reason"] == "stop"
    assert msg["usage"]["prompt_tokens"] == 250 and msg["usage"]["completion_tokens"] == 18
    assert msg["usage"]["total_tokens"] == 268
    assert facts[0].calls[0].call_id == "call_r1"
    assert json.loads(facts[0].calls[0].arguments) == {"hash": H1}
    assert facts[0].assistant["tool_calls"][0]["function"]["name"] == TOOL


def test_chat_without_retrieval_is_byte_identical():
    round1 = chat_events("Plain answer.", [("call_x", "bash", {"cmd": "ls"})], "tool_calls")
    raw, _ = every_cut(ChatSplicer, [round1], stride=7)
    assert raw == b"".join(round1)


def test_chat_mixed_turn_renumbers_real_call():
    round1 = chat_events("", [("call_r1", TOOL, {"hash": H1}), ("call_real", "bash", {"cmd": "ls"})],
                         "tool_calls")
    raw, facts = every_cut(ChatSplicer, [round1], stride=7)
    msg = read_chat(raw)
    assert msg["tool_calls"] == [{"id": "call_real", "name": "bash",
                                  "arguments": json.dumps({"cmd": "ls"})}]
    assert msg["finish_reason"] == "tool_calls"
    assert facts[0].real_calls == ("call_real",)


def test_chat_dropped_call_gets_stop():
    raw, _ = run(ChatSplicer(), [chat_events("", [("c1", TOOL, {"hash": H1})], "tool_calls")],
                 override="stop")
    msg = read_chat(raw)
    assert msg["finish_reason"] == "stop" and msg["tool_calls"] == []


# --- OpenAI Responses ------------------------------------------------------------------------

R_ROUND1 = responses_events(responses_items("Checking.", [("call_r1", TOOL, {"hash": H1})], "1"),
                            "resp_1", 60, 15)
R_ROUND2 = responses_events(responses_items("It says NEEDLE-42.", [], "2"), "resp_2", 160, 9)


def test_responses_two_rounds_every_split_point():
    raw, facts = every_cut(ResponsesSplicer, [R_ROUND1, R_ROUND2])
    response = read_responses(raw)
    assert response["id"] == "resp_2", "the last round's id: its stored context holds every round"
    assert [i["type"] for i in response["output"]] == ["message", "message"]
    assert response["output"][1]["content"][0]["text"] == "It says NEEDLE-42."
    assert response["usage"]["input_tokens"] == 220 and response["usage"]["output_tokens"] == 24
    assert facts[0].calls[0].call_id == "call_r1" and facts[0].response_id == "resp_1"


def test_responses_without_retrieval_is_byte_identical():
    round1 = responses_events(responses_items("Just text.", []))
    raw, _ = every_cut(ResponsesSplicer, [round1], stride=7)
    assert raw == b"".join(round1)


def test_responses_mixed_turn():
    round1 = responses_events(responses_items("", [("call_r1", TOOL, {"hash": H1}),
                                                   ("call_real", "shell", {"cmd": "ls"})]))
    raw, facts = every_cut(ResponsesSplicer, [round1], stride=7)
    response = read_responses(raw)
    assert [i["call_id"] for i in response["output"]] == ["call_real"]
    assert facts[0].real_calls == ("call_real",)


@pytest.mark.parametrize("make", [AnthropicSplicer, ChatSplicer, ResponsesSplicer])
def test_withholding_flag_tracks_our_call(make):
    rounds = {AnthropicSplicer: A_ROUND1, ChatSplicer: C_ROUND1, ResponsesSplicer: R_ROUND1}[make]
    splicer = make()
    seen = []
    parser = SSEParser()
    for ev in parser.feed(b"".join(rounds)):
        splicer.feed(ev)
        seen.append(splicer.withholding)
    assert not seen[0] and seen[-1]
