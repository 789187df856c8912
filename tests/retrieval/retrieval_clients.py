"""What a strict SDK would make of a stream the client received: one message, or an assertion.

Each reader checks the stream's grammar (one start, consecutive indexes, one terminal event)
and returns the assembled message, so tests can compare it with what the provider said.
"""

from __future__ import annotations

import json

from headroom_core.sse import SSEParser

TOOL = "headroom_retrieve"


def events(raw: bytes) -> list:
    parser = SSEParser()
    return parser.feed(raw) + parser.close()


def read_anthropic(raw: bytes) -> dict:
    assert TOOL.encode() not in raw, "the client saw headroom_retrieve"
    evs = [e for e in events(raw) if e.event != "ping"]
    assert evs and evs[0].event == "message_start", evs[:1]
    assert sum(e.event == "message_start" for e in evs) == 1
    assert evs[-1].event == "message_stop" and sum(e.event == "message_stop" for e in evs) == 1
    assert evs[-2].event == "message_delta" and sum(e.event == "message_delta" for e in evs) == 1
    message = json.loads(evs[0].data)["message"]
    usage = dict(message["usage"])
    content: list[dict] = []
    open_index = None
    parts: dict[int, str] = {}
    for e in evs[1:-2]:
        data = json.loads(e.data)
        assert data["type"] == e.event
        if e.event == "content_block_start":
            assert open_index is None, "a block started before the previous one stopped"
            assert data["index"] == len(content), (data["index"], len(content))
            content.append(dict(data["content_block"]))
            open_index = data["index"]
        elif e.event == "content_block_delta":
            assert data["index"] == open_index
            d, block = data["delta"], content[open_index]
            if d["type"] == "text_delta":
                block["text"] += d["text"]
            elif d["type"] == "thinking_delta":
                block["thinking"] += d["thinking"]
            elif d["type"] == "signature_delta":
                block["signature"] = block.get("signature", "") + d["signature"]
            elif d["type"] == "input_json_delta":
                parts[open_index] = parts.get(open_index, "") + d["partial_json"]
        elif e.event == "content_block_stop":
            assert data["index"] == open_index
            if open_index in parts:
                content[open_index]["input"] = json.loads(parts[open_index])
            open_index = None
        else:
            raise AssertionError(f"unexpected event {e.event}")
    assert open_index is None
    final = json.loads(evs[-2].data)
    usage.update(final.get("usage") or {})
    message.update(content=content, stop_reason=final["delta"]["stop_reason"], usage=usage)
    return message


def read_chat(raw: bytes) -> dict:
    assert TOOL.encode() not in raw, "the client saw headroom_retrieve"
    evs = events(raw)
    assert evs[-1].data == "[DONE]" and sum(e.data == "[DONE]" for e in evs) == 1
    chunks = [json.loads(e.data) for e in evs[:-1]]
    assert len({c["id"] for c in chunks}) == 1, "chunks of one completion share one id"
    text, calls, finish, usage = "", [], None, None
    for c in chunks:
        if c.get("usage"):
            assert usage is None
            usage = c["usage"]
        for choice in c["choices"]:
            assert finish is None, "a chunk after the finish chunk"
            d = choice["delta"]
            text += d.get("content") or ""
            for tc in d.get("tool_calls") or []:
                if tc["index"] == len(calls):
                    calls.append({"id": tc["id"], "name": tc["function"]["name"], "arguments": ""})
                assert tc["index"] < len(calls), "tool call indexes must be consecutive"
                calls[tc["index"]]["arguments"] += tc["function"].get("arguments") or ""
            finish = choice.get("finish_reason") or finish
    assert finish is not None
    return {"id": chunks[0]["id"], "content": text, "tool_calls": calls, "finish_reason": finish,
            "usage": usage}


def read_responses(raw: bytes) -> dict:
    assert TOOL.encode() not in raw, "the client saw headroom_retrieve"
    evs = events(raw)
    datas = [json.loads(e.data) for e in evs if e.data.strip()]
    assert [d["sequence_number"] for d in datas] == list(range(len(datas))), "sequence numbers"
    assert datas[0]["type"] == "response.created"
    terminal = [d for d in datas if d["type"] in ("response.completed", "response.incomplete",
                                                  "response.failed")]
    assert len(terminal) == 1 and terminal[0] is datas[-1]
    added = [d for d in datas if d["type"] == "response.output_item.added"]
    done = [d for d in datas if d["type"] == "response.output_item.done"]
    assert [d["output_index"] for d in added] == list(range(len(added)))
    assert [d["output_index"] for d in done] == list(range(len(done)))
    response = terminal[0]["response"]
    if response["status"] == "completed":
        assert response["output"] == [d["item"] for d in done]
    for d in datas:
        if "output_index" in d and d["type"] != "response.output_item.added":
            assert d["output_index"] < len(added)
    return response
