"""Provider responses for retrieval tests: event streams and bodies that call headroom_retrieve.

Each builder returns what a provider would send for one round, in the three dialects, with
realistic shapes (thinking + signature, tool-call argument deltas, usage, sequence numbers).
"""

from __future__ import annotations

import json

TOOL = "headroom_retrieve"


def sse(event: str | None, data: dict | str) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def chunks(text: str, n: int = 3) -> list[str]:
    step = max(1, len(text) // n)
    return [text[i:i + step] for i in range(0, len(text), step)]


# --- Anthropic -------------------------------------------------------------------------------

def anthropic_events(blocks: list[dict], stop: str, msg_id: str = "msg_1", input_tokens: int = 100,
                     output_tokens: int = 20, cache_read: int = 0) -> list[bytes]:
    """blocks: {"type": "text", "text"} | {"type": "thinking", "thinking", "signature"} |
    {"type": "tool_use", "id", "name", "input"}."""
    usage = {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": cache_read, "output_tokens": 1}
    out = [sse("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": "claude-test",
        "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}})]
    for i, b in enumerate(blocks):
        kind = b["type"]
        if kind == "text":
            start = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": p} for p in chunks(b["text"])]
        elif kind == "thinking":
            start = {"type": "thinking", "thinking": ""}
            deltas = [{"type": "thinking_delta", "thinking": p} for p in chunks(b["thinking"])]
            deltas.append({"type": "signature_delta", "signature": b["signature"]})
        else:
            start = {"type": "tool_use", "id": b["id"], "name": b["name"], "input": {}}
            deltas = [{"type": "input_json_delta", "partial_json": p}
                      for p in chunks(json.dumps(b["input"]), 4)]
        out.append(sse("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": start}))
        if i == 0:
            out.append(sse("ping", {"type": "ping"}))
        out += [sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
                for d in deltas]
        out.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    out.append(sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": stop, "stop_sequence": None},
                                     "usage": {"output_tokens": output_tokens}}))
    out.append(sse("message_stop", {"type": "message_stop"}))
    return out


def anthropic_body(blocks: list[dict], stop: str, msg_id: str = "msg_1", input_tokens: int = 100,
                   output_tokens: int = 20, cache_read: int = 0) -> dict:
    return {"id": msg_id, "type": "message", "role": "assistant", "model": "claude-test",
            "content": blocks, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": cache_read, "output_tokens": output_tokens}}


def a_retrieve(call_id: str, digest: str, query: str | None = None) -> dict:
    args = {"hash": digest} if query is None else {"hash": digest, "query": query}
    return {"type": "tool_use", "id": call_id, "name": TOOL, "input": args}


# --- OpenAI chat -----------------------------------------------------------------------------

def chat_events(text: str, calls: list[tuple[str, str, dict]], finish: str, cid: str = "chatcmpl-1",
                prompt_tokens: int = 50, completion_tokens: int = 10, usage: bool = True) -> list[bytes]:
    """calls: (id, name, arguments)."""
    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        return {"id": cid, "object": "chat.completion.chunk", "created": 1700000000,
                "model": "gpt-test", "choices": [{"index": 0, "delta": delta,
                                                  "logprobs": None, "finish_reason": finish_reason}]}

    out = [sse(None, chunk({"role": "assistant", "content": ""}))]
    out += [sse(None, chunk({"content": p})) for p in (chunks(text) if text else [])]
    for n, (call_id, name, args) in enumerate(calls):
        out.append(sse(None, chunk({"tool_calls": [{"index": n, "id": call_id, "type": "function",
                                                    "function": {"name": name, "arguments": ""}}]})))
        out += [sse(None, chunk({"tool_calls": [{"index": n, "function": {"arguments": p}}]}))
                for p in chunks(json.dumps(args), 3)]
    out.append(sse(None, chunk({}, finish)))
    if usage:
        out.append(sse(None, {"id": cid, "object": "chat.completion.chunk", "created": 1700000000,
                              "model": "gpt-test", "choices": [],
                              "usage": {"prompt_tokens": prompt_tokens,
                                        "completion_tokens": completion_tokens,
                                        "total_tokens": prompt_tokens + completion_tokens,
                                        "prompt_tokens_details": {"cached_tokens": 0}}}))
    out.append(sse(None, "[DONE]"))
    return out


def chat_body(text: str | None, calls: list[tuple[str, str, dict]], finish: str,
              cid: str = "chatcmpl-1", prompt_tokens: int = 50, completion_tokens: int = 10) -> dict:
    message: dict = {"role": "assistant", "content": text}
    if calls:
        message["tool_calls"] = [{"id": i, "type": "function",
                                  "function": {"name": n, "arguments": json.dumps(a)}}
                                 for i, n, a in calls]
    return {"id": cid, "object": "chat.completion", "created": 1700000000, "model": "gpt-test",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


# --- OpenAI Responses ------------------------------------------------------------------------

def responses_items(text: str, calls: list[tuple[str, str, dict]], tag: str = "1") -> list[dict]:
    items: list[dict] = []
    if text:
        items.append({"type": "message", "id": f"msg_{tag}", "status": "completed",
                      "role": "assistant",
                      "content": [{"type": "output_text", "text": text, "annotations": []}]})
    for call_id, name, args in calls:
        items.append({"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id,
                      "name": name, "arguments": json.dumps(args), "status": "completed"})
    return items


def responses_body(items: list[dict], rid: str = "resp_1", input_tokens: int = 60,
                   output_tokens: int = 15) -> dict:
    return {"id": rid, "object": "response", "created_at": 1700000000, "status": "completed",
            "model": "gpt-test", "output": items,
            "usage": {"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
                      "output_tokens": output_tokens,
                      "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": input_tokens + output_tokens}}


def responses_events(items: list[dict], rid: str = "resp_1", input_tokens: int = 60,
                     output_tokens: int = 15) -> list[bytes]:
    seq = iter(range(10_000))
    final = responses_body(items, rid, input_tokens, output_tokens)
    start = {**final, "status": "in_progress", "output": [], "usage": None}

    def ev(kind: str, **fields) -> bytes:
        return sse(kind, {"type": kind, **fields, "sequence_number": next(seq)})

    out = [ev("response.created", response=start), ev("response.in_progress", response=start)]
    for n, item in enumerate(items):
        if item["type"] == "message":
            text = item["content"][0]["text"]
            out.append(ev("response.output_item.added", output_index=n,
                          item={**item, "status": "in_progress", "content": []}))
            out.append(ev("response.content_part.added", item_id=item["id"], output_index=n,
                          content_index=0, part={"type": "output_text", "text": "", "annotations": []}))
            out += [ev("response.output_text.delta", item_id=item["id"], output_index=n,
                       content_index=0, delta=p) for p in chunks(text)]
            out.append(ev("response.output_text.done", item_id=item["id"], output_index=n,
                          content_index=0, text=text))
            out.append(ev("response.content_part.done", item_id=item["id"], output_index=n,
                          content_index=0, part=item["content"][0]))
        else:
            out.append(ev("response.output_item.added", output_index=n,
                          item={**item, "status": "in_progress", "arguments": ""}))
            out += [ev("response.function_call_arguments.delta", item_id=item["id"],
                       output_index=n, delta=p) for p in chunks(item["arguments"], 3)]
            out.append(ev("response.function_call_arguments.done", item_id=item["id"],
                          output_index=n, arguments=item["arguments"]))
        out.append(ev("response.output_item.done", output_index=n, item=item))
    out.append(ev("response.completed", response=final))
    return out
