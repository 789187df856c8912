"""Compression and retrieval together, in process: the engine's markers bring the tool, and the
model's call with a marker's hash gets the original the engine stored."""

from __future__ import annotations

import json

import pytest

from headroom_core import jsonfmt
from headroom_core.ccr import CCRStore
from headroom_core.compression.engine import CompressionConfig, compress_request
from headroom_core.compression.markers import find_markers
from headroom_core.retrieval.conversation import ConversationStore, prepare_request
from headroom_core.retrieval.engine import Turn, buffered_turn
from headroom_core.retrieval.tool import TOOL_NAME, definition
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request
from retrieval_streams import anthropic_body, chat_body
from test_retrieval_engine import JSON, FakeReply, Script

LOG = "\n".join(f"2024-05-01 10:{i // 60:02d}:{i % 60:02d} INFO worker-{i % 7} processed batch {i} in "
                f"{20 + i % 13} ms" for i in range(600))
LOG += "\n2024-05-01 11:00:00 ERROR worker-3 NEEDLE-99 checksum mismatch in batch 601\n"
LOG += "\n".join(f"2024-05-01 11:00:{i:02d} INFO worker-1 processed batch {602 + i} in 21 ms"
                 for i in range(50))


def request(endpoint: Endpoint) -> dict:
    if endpoint is Endpoint.ANTHROPIC_MESSAGES:
        return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
            {"role": "user", "content": "Why did the batch job fail?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "bash",
                                               "input": {"command": "journalctl -u batch-worker"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                          "content": LOG}]}]}
    return {"model": "gpt-4o", "messages": [
        {"role": "user", "content": "Why did the batch job fail?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "bash", "arguments": "{\"command\": \"journalctl -u batch-worker\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": LOG}]}


@pytest.mark.parametrize("endpoint", [Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT])
async def test_compressed_output_is_retrieved_whole(endpoint):
    ccr = CCRStore(MemoryStorage())
    doc = request(endpoint)
    report = compress_request(parse_request(doc, endpoint), tenant="t_a", ccr=ccr,
                              config=CompressionConfig(min_tokens=200))
    assert report.changed, report
    text = json.dumps(doc)
    hashes = find_markers(text)
    assert hashes, "the engine announced the omission with a marker"
    assert TOOL_NAME not in json.dumps(doc.get("tools", []))
    prep = prepare_request(doc, endpoint, "t_a", ConversationStore(MemoryStorage()))
    assert prep.tool and doc["tools"] == [definition(endpoint)]
    body = jsonfmt.dumps(doc)

    call = [("call_r", TOOL_NAME, {"hash": hashes[0]})]
    if endpoint is Endpoint.ANTHROPIC_MESSAGES:
        first = anthropic_body([{"type": "tool_use", "id": "call_r", "name": TOOL_NAME,
                                 "input": {"hash": hashes[0]}}], "tool_use")
        final = anthropic_body([{"type": "text", "text": "NEEDLE-99: checksum mismatch."}], "end_turn")
    else:
        first = chat_body(None, call, "tool_calls")
        final = chat_body("NEEDLE-99: checksum mismatch.", [], "stop")
    script = Script(FakeReply(200, JSON, [json.dumps(final).encode()]))
    turn = Turn(endpoint, "t_a", body, ccr)
    status, _, out = await buffered_turn(turn, json.dumps(first).encode(), script)
    assert status == 200 and TOOL_NAME.encode() not in out
    continuation = json.dumps(script.bodies[0])
    assert "NEEDLE-99 checksum mismatch in batch 601" in continuation
    assert turn.outcome.retrieved_bytes == len(LOG.encode()), "the original, byte for byte"
