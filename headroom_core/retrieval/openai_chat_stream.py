"""Splicing OpenAI Chat Completions chunk streams: one completion over several rounds.

The client sees every chunk except the `tool_calls` deltas of our `headroom_retrieve` calls;
the other calls' indexes are renumbered; a continuation's chunks follow under the first round's
id; the last round's finish chunk, the usage chunk (summed over rounds) and one `[DONE]` close
it. Unchanged chunks are forwarded as the exact bytes received. Only choice 0 is handled
(requests with n > 1 are not given retrieval).
"""

from __future__ import annotations

import json

from ..sse import SSEEvent, encode_event
from .answers import RetrieveCall
from .common import RoundFacts
from .openai_chat import joined
from .splicing import RoundSplicer
from .tool import TOOL_NAME

PING = b": ping\n\n"
DONE = b"data: [DONE]\n\n"


class ChatSplicer(RoundSplicer):
    ping = PING

    def __init__(self) -> None:
        self._first_id: object = None
        self._first_created: object = None
        self._client_tools = 0  # tool call indexes already given to the client
        self._client_tail = ""  # the last character of text the client has seen
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._calls: dict[int, dict] = {}  # provider index -> assembled tool call
        self._content: list[str] = []
        self._refusal: list[str] = []
        self._finish: str | None = None
        self._held: list[tuple[dict, bytes]] = []  # finish chunk, usage chunk
        self._done_raw = b""
        self._usage: dict | None = None
        self._sep_pending = self.rounds > 0

    def feed(self, ev: SSEEvent) -> list[bytes]:
        if ev.data.strip() == "[DONE]":
            self._done_raw = ev.raw
            self.round_done = True
            return []
        data = self._json_object(ev)
        if data is None:
            return [ev.raw]
        if "error" in data and "choices" not in data:
            self.errored = True
            return [ev.raw]
        if self._first_id is None:
            self._first_id, self._first_created = data.get("id"), data.get("created")
        self._id = data.get("id") if isinstance(data.get("id"), str) else self._id
        if isinstance(data.get("usage"), dict):
            self._usage = data["usage"]
        choices = data.get("choices")
        if choices == []:  # the usage chunk: sent at the very end, summed
            self._held.append((data, ev.raw))
            return []
        if not (isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], dict)
                and isinstance(choices[0].get("delta", {}), dict)):
            return [ev.raw]
        return self._choice_chunk(ev, data, choices[0])

    def _choice_chunk(self, ev: SSEEvent, data: dict, choice: dict) -> list[bytes]:
        delta = dict(choice.get("delta") or {})
        changed = False
        if self.rounds > 0:
            data = {**data, "id": self._first_id}
            if "created" in data:
                data["created"] = self._first_created
            changed = True
            delta.pop("role", None)  # the client had the role in the first round
        text = delta.get("content")
        if isinstance(text, str) and text:
            self._content.append(text)
            if self._sep_pending:
                self._sep_pending = False
                shown = joined(self._client_tail, text)
                if shown != self._client_tail + text:
                    delta["content"] = text = shown[len(self._client_tail):]
                    changed = True
            self._client_tail = text[-1]
        if isinstance(delta.get("refusal"), str):
            self._refusal.append(delta["refusal"])
        dropped = False
        if isinstance(delta.get("tool_calls"), list):
            kept, changed_calls, dropped = self._tool_calls(delta["tool_calls"])
            changed = changed or changed_calls
            if kept:
                delta["tool_calls"] = kept
            else:
                del delta["tool_calls"]
        finish = choice.get("finish_reason")
        if finish is not None:
            self._finish = finish
            out: list[bytes] = []
            rest = {k: v for k, v in delta.items() if v not in ("", None, [])}
            if rest:  # text in the finish chunk itself goes out now, the finish waits
                out.append(self._encode(None, self._with({k: v for k, v in data.items() if k != "usage"},
                                                   choice, delta, None)))
            self._held.insert(0, (self._with(data, choice, {}, finish), ev.raw))
            return out
        if dropped and not any(v not in ("", None, []) for v in delta.values()) and "usage" not in data:
            return []  # a chunk that only carried our call
        if not changed:
            return [ev.raw]
        return [self._encode(None, self._with(data, choice, delta, finish))]

    @staticmethod
    def _with(data: dict, choice: dict, delta: dict, finish: str | None) -> dict:
        return {**data, "choices": [{**choice, "delta": delta, "finish_reason": finish}]}

    def _tool_calls(self, calls: list) -> tuple[list, bool, bool]:
        kept, changed, dropped = [], False, False
        for call in calls:
            index = call.get("index") if isinstance(call, dict) else None
            if type(index) is not int:
                kept.append(call)
                continue
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            if index not in self._calls:
                self._calls[index] = {"id": call.get("id"), "type": call.get("type") or "function",
                                      "function": {"name": fn.get("name"), "arguments": ""}}
                if fn.get("name") == TOOL_NAME:
                    self._withheld.add(index)
                else:
                    self._real.append(str(call.get("id")))
                    self._map[index] = self._client_tools
                    self._client_tools += 1
            self._calls[index]["function"]["arguments"] += fn.get("arguments") or ""
            if index in self._withheld:
                dropped = changed = True
            elif self._map[index] != index:
                kept.append({**call, "index": self._map[index]})
                changed = True
            else:
                kept.append(call)
        return kept, changed, dropped

    # --- round boundaries ---

    def end_round(self) -> RoundFacts:
        message: dict = {"role": "assistant", "content": "".join(self._content) or None}
        if self._refusal:
            message["refusal"] = "".join(self._refusal)
        if self._calls:
            message["tool_calls"] = [self._calls[i] for i in sorted(self._calls)]
        calls = tuple(RetrieveCall(str(self._calls[i]["id"] or ""),
                                   self._calls[i]["function"]["arguments"])
                      for i in sorted(self._withheld))
        return RoundFacts(calls, tuple(self._real), self._finish, message, self._usage, self._id,
                          self.round_done)

    def _round_usage(self) -> dict | None:
        return self._usage

    def finish(self, stop_override: str | None = None) -> list[bytes]:
        if self.rounds == 0 and stop_override is None:
            return [raw for _, raw in self._held] + [self._done_raw or DONE]
        usage = self._turn_usage()
        out = []
        for data, _ in self._held:
            data = {**data, "id": self._first_id}
            if "created" in data:
                data["created"] = self._first_created
            if stop_override is not None and data.get("choices"):
                data["choices"] = [{**data["choices"][0], "finish_reason": stop_override}]
            if "usage" in data and usage is not None:
                data["usage"] = usage
            out.append(self._encode(None, data))
        return out + [self._done_raw or DONE]

    def abort(self) -> list[bytes]:
        return [raw for _, raw in self._held] + ([self._done_raw] if self._done_raw else [])

    def fail(self, status: int, message: str, error_type: str = "server_error") -> list[bytes]:
        data = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
        return [encode_event(None, json.dumps(data))]
