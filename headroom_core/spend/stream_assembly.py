"""Streamed answers to final JSON bodies and back: so streamed answers can be cached and replayed.

`StreamAssembler(endpoint)` is fed the SSE events of one streamed response and builds the body
the same request would have returned unstreamed: an Anthropic `message` (text, tool_use,
thinking and other blocks), an OpenAI `chat.completion`, or a Responses `response` object.
`replay_sse(endpoint, body)` does the reverse: a complete, valid event stream for a stored body,
in the order the providers send events, which the official SDKs' stream parsers accept.
`assemble(replay(x)) == x` for every body this module produces.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

from ..sse import SSEEvent, SSEParser, encode_event
from ..wire.common import Endpoint

_STREAM_ONLY_KEYS = frozenset({"obfuscation"})  # OpenAI's per-chunk padding: not part of a body


def _ev(value: Endpoint | str) -> str:
    return getattr(value, "value", str(value))


class StreamAssembler:
    """Feed SSE events in order; `result()` is the final body once the stream completed."""

    def __init__(self, endpoint: Endpoint | str) -> None:
        self.endpoint = _ev(endpoint)
        if self.endpoint not in (Endpoint.ANTHROPIC_MESSAGES.value, Endpoint.OPENAI_CHAT.value,
                                 Endpoint.OPENAI_RESPONSES.value):
            raise ValueError(f"no stream format for endpoint {self.endpoint!r}")
        self.complete = False  # the provider's end-of-stream event was seen
        self.failed = False  # an error event, or data that is not the expected JSON
        self._doc: dict[str, Any] | None = None
        self._partial_json: dict[int, str] = {}  # Anthropic tool input by block index
        self._choices: dict[int, dict[str, Any]] = {}  # chat choices by index
        self._items: dict[int, Any] = {}  # Responses output items by output_index

    def feed(self, event: SSEEvent) -> None:
        if self.complete or self.failed:
            return
        data = event.data
        if self.endpoint == Endpoint.OPENAI_CHAT.value and data.strip() == "[DONE]":
            self.complete = self._doc is not None
            return
        if not data.strip():
            return
        try:
            payload = json.loads(data)
            if not isinstance(payload, dict):
                raise ValueError("event data is not an object")
            if self.endpoint == Endpoint.ANTHROPIC_MESSAGES.value:
                self._anthropic(event.event or payload.get("type", ""), payload)
            elif self.endpoint == Endpoint.OPENAI_CHAT.value:
                self._chat(payload)
            else:
                self._responses(event.event or payload.get("type", ""), payload)
        except (ValueError, KeyError, TypeError, IndexError, AttributeError):
            self.failed = True

    def feed_all(self, events: Iterable[SSEEvent]) -> "StreamAssembler":
        for e in events:
            self.feed(e)
        return self

    def result(self) -> dict[str, Any] | None:
        """The assembled body, or None if the stream did not complete cleanly."""
        if not self.complete or self.failed or self._doc is None:
            return None
        return self._doc

    # --- Anthropic Messages ---

    def _anthropic(self, name: str, p: dict[str, Any]) -> None:
        if name == "message_start":
            self._doc = copy.deepcopy(p["message"])
            self._doc["content"] = []
        elif name == "content_block_start":
            content = self._doc["content"]
            index = p["index"]
            while len(content) <= index:
                content.append(None)
            content[index] = copy.deepcopy(p["content_block"])
        elif name == "content_block_delta":
            block, d = self._doc["content"][p["index"]], p["delta"]
            kind = d.get("type")
            if kind == "text_delta":
                block["text"] = block.get("text", "") + d["text"]
            elif kind == "input_json_delta":
                self._partial_json[p["index"]] = self._partial_json.get(p["index"], "") + d["partial_json"]
            elif kind == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + d["thinking"]
            elif kind == "signature_delta":
                block["signature"] = block.get("signature", "") + d["signature"]
            elif kind == "citations_delta":
                block.setdefault("citations", []).append(d["citation"])
        elif name == "content_block_stop":
            text = self._partial_json.pop(p["index"], "")
            if text:
                self._doc["content"][p["index"]]["input"] = json.loads(text)
        elif name == "message_delta":
            self._doc.update(p.get("delta") or {})
            usage = p.get("usage")
            if usage:
                self._doc.setdefault("usage", {}).update(usage)
        elif name == "message_stop":
            self.complete = self._doc is not None and None not in self._doc["content"]
        elif name == "error":
            self.failed = True

    # --- OpenAI Chat Completions ---

    def _chat(self, p: dict[str, Any]) -> None:
        if "error" in p:
            self.failed = True
            return
        if self._doc is None:
            self._doc = {"id": p.get("id"), "object": "chat.completion"}
        for k, v in p.items():
            if k in ("object", "choices", "usage") or k in _STREAM_ONLY_KEYS:
                continue
            self._doc[k] = v
        for c in p.get("choices") or []:
            self._chat_choice(c)
        self._doc["choices"] = [self._choices[i] for i in sorted(self._choices)]
        if "usage" in p and (p["usage"] is not None or "usage" not in self._doc):
            self._doc["usage"] = p["usage"]

    def _chat_choice(self, c: dict[str, Any]) -> None:
        choice = self._choices.setdefault(
            c["index"], {"index": c["index"], "message": {}, "logprobs": None, "finish_reason": None})
        msg = choice["message"]
        for k, v in (c.get("delta") or {}).items():
            if k in ("content", "refusal") and isinstance(v, str):
                msg[k] = (msg.get(k) or "") + v
            elif k == "tool_calls" and v is not None:
                calls = msg.setdefault("tool_calls", [])
                for d in v:
                    _merge_tool_call(calls, d)
            elif k in ("content", "refusal"):
                msg.setdefault(k, v)
            else:
                msg[k] = v
        logprobs = c.get("logprobs")
        if logprobs is not None:
            if choice["logprobs"] is None:
                choice["logprobs"] = copy.deepcopy(logprobs)
            else:
                for k, v in logprobs.items():
                    prev = choice["logprobs"].get(k)
                    choice["logprobs"][k] = prev + v if isinstance(prev, list) and isinstance(v, list) else v
        for k, v in c.items():
            if k not in ("index", "delta", "logprobs") and (k != "finish_reason" or v is not None):
                choice[k] = v

    # --- OpenAI Responses ---

    def _responses(self, name: str, p: dict[str, Any]) -> None:
        if name in ("response.created", "response.in_progress"):
            self._doc = copy.deepcopy(p["response"])
        elif name == "response.output_item.done":
            self._items[p["output_index"]] = p["item"]
        elif name in ("response.completed", "response.incomplete", "response.failed"):
            self._doc = copy.deepcopy(p["response"])
            if not self._doc.get("output") and self._items:
                self._doc["output"] = [self._items[i] for i in sorted(self._items)]
            self.complete = True
        elif name == "error":
            self.failed = True


def _merge_tool_call(calls: list[dict[str, Any]], d: dict[str, Any]) -> None:
    index = d.get("index", len(calls))
    while len(calls) <= index:
        calls.append({})
    call = calls[index]
    for k, v in d.items():
        if k == "index":
            continue
        if k == "function" and isinstance(v, dict):
            fn = call.setdefault("function", {})
            for fk, fv in v.items():
                fn[fk] = (fn.get(fk) or "") + fv if isinstance(fv, str) else fv
        else:
            call[k] = v


def assemble_sse(endpoint: Endpoint | str, raw: bytes) -> dict[str, Any] | None:
    """Assemble a whole captured stream (convenience over SSEParser + StreamAssembler)."""
    parser = SSEParser()
    events = parser.feed(raw) + parser.close()
    return StreamAssembler(endpoint).feed_all(events).result()


def _data(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def replay_sse(endpoint: Endpoint | str, body: dict[str, Any]) -> bytes:
    """A complete SSE stream that assembles back to `body` (a final, non-streamed body)."""
    ep = _ev(endpoint)
    if ep == Endpoint.ANTHROPIC_MESSAGES.value:
        events = _replay_anthropic(body)
    elif ep == Endpoint.OPENAI_CHAT.value:
        return b"".join(encode_event(None, _data(c)) for c in _replay_chat(body)) + \
            encode_event(None, "[DONE]")
    elif ep == Endpoint.OPENAI_RESPONSES.value:
        events = _replay_responses(body)
    else:
        raise ValueError(f"no stream format for endpoint {ep!r}")
    return b"".join(encode_event(name, _data(payload)) for name, payload in events)


def _replay_anthropic(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    start = {k: v for k, v in body.items() if k not in ("content",)}
    start.update(content=[], stop_reason=None, stop_sequence=None)
    usage = body.get("usage") or {}
    start["usage"] = {**usage, "output_tokens": min(1, usage.get("output_tokens", 0) or 0)} if usage else usage
    out: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": start}),
                                             ("ping", {"type": "ping"})]
    for i, block in enumerate(body.get("content") or []):
        first, deltas = _anthropic_block(block)
        out.append(("content_block_start", {"type": "content_block_start", "index": i,
                                            "content_block": first}))
        for d in deltas:
            out.append(("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d}))
        out.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
    delta = {"stop_reason": body.get("stop_reason"), "stop_sequence": body.get("stop_sequence")}
    out.append(("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
    out.append(("message_stop", {"type": "message_stop"}))
    return out


def _anthropic_block(block: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    first, deltas = dict(block), []
    kind = block.get("type")
    if kind == "text":
        first["text"] = ""
        if block.get("citations"):
            first["citations"] = []
            deltas += [{"type": "citations_delta", "citation": c} for c in block["citations"]]
        if block.get("text"):
            deltas.append({"type": "text_delta", "text": block["text"]})
    elif kind in ("tool_use", "server_tool_use") and block.get("input"):
        first["input"] = {}
        deltas.append({"type": "input_json_delta", "partial_json": _data(block["input"])})
    elif kind == "thinking":
        first["thinking"] = ""
        first.pop("signature", None)
        if block.get("thinking"):
            deltas.append({"type": "thinking_delta", "thinking": block["thinking"]})
        if "signature" in block:
            deltas.append({"type": "signature_delta", "signature": block["signature"]})
    return first, deltas


def _replay_chat(body: dict[str, Any]) -> list[dict[str, Any]]:
    top = {k: v for k, v in body.items() if k not in ("object", "choices", "usage")}
    top["object"] = "chat.completion.chunk"
    chunks = []
    for choice in body.get("choices") or []:
        msg = choice.get("message") or {}
        idx = choice.get("index", 0)
        first = {k: v for k, v in msg.items() if k not in ("content", "refusal", "tool_calls")}
        for k in ("content", "refusal"):
            if k in msg:
                first[k] = "" if isinstance(msg[k], str) else msg[k]
        chunks.append({**top, "choices": [{"index": idx, "delta": first, "logprobs": None,
                                           "finish_reason": None}]})
        for k in ("content", "refusal"):
            if isinstance(msg.get(k), str) and msg[k]:
                chunks.append({**top, "choices": [{"index": idx, "delta": {k: msg[k]},
                                                   "logprobs": None, "finish_reason": None}]})
        for n, call in enumerate(msg.get("tool_calls") or []):
            chunks.append({**top, "choices": [{"index": idx, "delta": {"tool_calls": [
                {"index": n, **call}]}, "logprobs": None, "finish_reason": None}]})
        extra = {k: v for k, v in choice.items() if k not in ("index", "message", "logprobs",
                                                            "finish_reason")}
        chunks.append({**top, "choices": [{"index": idx, "delta": {}, "logprobs": choice.get("logprobs"),
                                           "finish_reason": choice.get("finish_reason"), **extra}]})
    if "usage" in body:
        chunks.append({**top, "choices": [], "usage": body["usage"]})
    return chunks


def _replay_responses(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []

    def emit(name: str, **fields: Any) -> None:
        events.append((name, {"type": name, "sequence_number": len(events), **fields}))

    pending = {**body, "status": "in_progress", "output": [], "usage": None}
    emit("response.created", response=pending)
    emit("response.in_progress", response=pending)
    for i, item in enumerate(body.get("output") or []):
        _replay_response_item(emit, i, item)
    final = body.get("status", "completed")
    name = {"incomplete": "response.incomplete", "failed": "response.failed"}.get(final, "response.completed")
    emit(name, response=body)
    return events


def _replay_response_item(emit: Any, i: int, item: dict[str, Any]) -> None:
    kind, item_id = item.get("type"), item.get("id")
    added = dict(item)
    if "status" in item:
        added["status"] = "in_progress"
    if kind == "message":
        added["content"] = []
        emit("response.output_item.added", output_index=i, item=added)
        for j, part in enumerate(item.get("content") or []):
            is_text = part.get("type") == "output_text"
            empty = {**part, "text": "", "annotations": []} if is_text else part
            emit("response.content_part.added", item_id=item_id, output_index=i, content_index=j, part=empty)
            if is_text:
                emit("response.output_text.delta", item_id=item_id, output_index=i, content_index=j,
                     delta=part.get("text", ""), logprobs=[])
                emit("response.output_text.done", item_id=item_id, output_index=i, content_index=j,
                     text=part.get("text", ""), logprobs=[])
            emit("response.content_part.done", item_id=item_id, output_index=i, content_index=j, part=part)
    elif kind == "function_call":
        added["arguments"] = ""
        emit("response.output_item.added", output_index=i, item=added)
        emit("response.function_call_arguments.delta", item_id=item_id, output_index=i,
             delta=item.get("arguments", ""))
        emit("response.function_call_arguments.done", item_id=item_id, output_index=i,
             arguments=item.get("arguments", ""))
    else:
        emit("response.output_item.added", output_index=i, item=added)
    emit("response.output_item.done", output_index=i, item=item)
