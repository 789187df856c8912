"""Splicing OpenAI Responses event streams: one response over several rounds.

The client sees the first round's `response.created` / `in_progress`, every output item except
our `headroom_retrieve` function calls (all their events withheld), the continuation's items
with `output_index` renumbered after the ones shown, `sequence_number` kept consecutive, and one
terminal event (`response.completed` ...) whose response lists every visible item, carries the
usage summed over rounds and the last round's id (the one whose stored context holds it all).
"""

from __future__ import annotations

from typing import Any

from ..sse import SSEEvent
from .answers import RetrieveCall
from .common import RoundFacts
from .openai_responses import call_id_of, is_client_call, is_retrieve_item, visible
from .splicing import RoundSplicer

PING = b": ping\n\n"
_START = ("response.created", "response.in_progress", "response.queued")
_TERMINAL = ("response.completed", "response.incomplete", "response.failed")


class ResponsesSplicer(RoundSplicer):
    ping = PING

    def __init__(self) -> None:
        self._seq = 0  # the next sequence number the client sees
        self._next_out = 0  # the next output_index the client sees
        self._shown: list = []  # visible items of the rounds already finished
        self._created: dict | None = None
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._items: dict[int, dict] = {}
        self._args: dict[int, str] = {}
        self._terminal: tuple[str | None, dict, bytes] | None = None

    def _emit(self, ev: SSEEvent, data: dict, changes: dict[str, Any]) -> list[bytes]:
        if "sequence_number" in data and data["sequence_number"] != self._seq:
            changes["sequence_number"] = self._seq
        if "sequence_number" in data:
            self._seq += 1
        changes = {k: v for k, v in changes.items() if data.get(k) != v}
        if not changes:
            return [ev.raw]
        return [self._encode(ev.event, {**data, **changes})]

    def feed(self, ev: SSEEvent) -> list[bytes]:
        data = self._json_object(ev)
        if data is None:
            return [ev.raw]
        kind = data.get("type") or ev.event
        response = data.get("response") if isinstance(data.get("response"), dict) else None
        if kind in _START:
            if response is not None:
                self._id = response.get("id", self._id)
                if self._created is None:
                    self._created = response
            return self._emit(ev, data, {}) if self.rounds == 0 else []
        if kind in _TERMINAL:
            if response is not None:
                self._id = response.get("id", self._id)
            self._terminal = (ev.event, data, ev.raw)
            self.round_done = True
            return []
        if kind == "error":
            self.errored = True
            return self._emit(ev, data, {})
        index = data.get("output_index")
        if type(index) is not int:
            return self._emit(ev, data, {})
        item = data.get("item") if isinstance(data.get("item"), dict) else None
        if kind == "response.output_item.added" and item is not None:
            self._items[index] = item
            if is_retrieve_item(item):
                self._withheld.add(index)
            else:
                if is_client_call(item):
                    self._real.append(call_id_of(item))
                self._map[index] = self._next_out
                self._next_out += 1
        elif kind == "response.output_item.done" and item is not None:
            self._items[index] = item
        elif kind == "response.function_call_arguments.delta" and index in self._withheld:
            self._args[index] = self._args.get(index, "") + str(data.get("delta") or "")
        if index in self._withheld:
            return []
        if index not in self._map:
            return self._emit(ev, data, {})
        return self._emit(ev, data, {"output_index": self._map[index]})

    # --- round boundaries ---

    def _round_items(self) -> list:
        if self._terminal is not None:
            response = self._terminal[1].get("response")
            if isinstance(response, dict) and isinstance(response.get("output"), list):
                return list(response["output"])
        return [self._items[i] for i in sorted(self._items)]

    def _round_usage(self) -> dict | None:
        if self._terminal is None:
            return None
        response = self._terminal[1].get("response")
        usage = response.get("usage") if isinstance(response, dict) else None
        return usage if isinstance(usage, dict) else None

    def end_round(self) -> RoundFacts:
        items = self._round_items()
        calls = []
        for index in sorted(self._withheld):
            item = next((i for i in items if isinstance(i, dict)
                         and call_id_of(i) == call_id_of(self._items[index])), self._items[index])
            arguments = item.get("arguments")
            if not isinstance(arguments, str) or not arguments:
                arguments = self._args.get(index, "")
            calls.append(RetrieveCall(call_id_of(item), arguments))
        status = None
        if self._terminal is not None and isinstance(self._terminal[1].get("response"), dict):
            status = self._terminal[1]["response"].get("status")
        return RoundFacts(tuple(calls), tuple(self._real), status, items, self._round_usage(),
                          self._id, self.round_done)

    def begin_round(self) -> None:
        self._shown.extend(visible(self._round_items()))
        super().begin_round()

    def finish(self, stop_override: str | None = None) -> list[bytes]:
        if self._terminal is None:
            return []
        event, data, raw = self._terminal
        if self.rounds == 0 and not self._withheld:
            return self._emit(SSEEvent(event, "", raw=raw), data, {})
        response = dict(data.get("response") or {})
        response["output"] = self._shown + visible(self._round_items())
        usage = self._turn_usage()
        if usage is not None:
            response["usage"] = usage
        return self._emit(SSEEvent(event, "", raw=raw), data, {"response": response})

    def abort(self) -> list[bytes]:
        return [self._terminal[2]] if self._terminal is not None else []

    def fail(self, status: int, message: str, error_type: str = "server_error") -> list[bytes]:
        response = dict(self._created or {})
        response.update(status="failed", output=self._shown,
                        error={"code": error_type, "message": message})
        data = {"type": "response.failed", "response": response, "sequence_number": self._seq}
        self._seq += 1
        return [self._encode("response.failed", data)]
