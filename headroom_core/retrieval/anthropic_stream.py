"""Splicing Anthropic Messages event streams: one message to the client over several rounds.

Sans-IO: feed it the provider's events, send what it returns. The client sees the first round's
`message_start`, every content block except our `headroom_retrieve` calls (their events are
withheld), the continuation rounds' blocks with their indexes renumbered after the ones already
shown, and one closing `message_delta` (last stop reason, usage summed over rounds) and
`message_stop`. Events that need no change are forwarded as the exact bytes received.
"""

from __future__ import annotations

import json
from typing import Any

from .. import jsonfmt
from ..sse import SSEEvent, encode_event
from .anthropic import call_of, is_retrieve_block
from .common import RoundFacts, merge_usage
from .splicing import RoundSplicer

PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def apply_delta(block: dict, delta: dict, json_parts: list[str]) -> None:
    """Grow an assembled content block by one delta, as the provider's SDK would."""
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = (block.get("text") or "") + (delta.get("text") or "")
    elif kind == "thinking_delta":
        block["thinking"] = (block.get("thinking") or "") + (delta.get("thinking") or "")
    elif kind == "signature_delta":
        block["signature"] = (block.get("signature") or "") + (delta.get("signature") or "")
    elif kind == "input_json_delta":
        json_parts.append(delta.get("partial_json") or "")
    elif kind == "citations_delta":
        cites = block.get("citations")
        block["citations"] = (cites if isinstance(cites, list) else []) + [delta.get("citation")]


def close_block(block: dict, json_parts: list[str]) -> str | None:
    """Finish a block at its stop event; returns the tool input as JSON text for tool blocks."""
    if "input" not in block and not json_parts:
        return None
    text = "".join(json_parts)
    if text.strip():
        try:
            block["input"] = jsonfmt.loads(text)
        except ValueError:
            block["input"] = {}
        return text
    return json.dumps(block.get("input") or {}, ensure_ascii=False)


class AnthropicSplicer(RoundSplicer):
    """One per client turn. Call `feed` per event; at the round's end (`round_done`) either
    `begin_round()` before feeding a continuation, or `finish()`."""

    ping = PING

    def __init__(self) -> None:
        self._next_index = 0  # the client's next content block index
        super().__init__()

    def _reset(self) -> None:
        super()._reset()
        self._blocks: dict[int, dict] = {}
        self._parts: dict[int, list[str]] = {}
        self._calls: dict[int, Any] = {}
        self._start_usage: dict | None = None
        self._delta: dict | None = None
        self._delta_raw = b""
        self._stop_raw = b""

    def feed(self, ev: SSEEvent) -> list[bytes]:
        data = self._json_object(ev)
        if data is None:
            return [ev.raw]
        kind = data.get("type") or ev.event
        if kind == "message_start":
            msg = data.get("message") if isinstance(data.get("message"), dict) else {}
            self._start_usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else None
            self._id = msg.get("id")
            return [ev.raw] if self.rounds == 0 else []
        if kind == "content_block_start":
            return self._block_start(ev, data)
        if kind in ("content_block_delta", "content_block_stop"):
            return self._block_event(ev, data, kind)
        if kind == "message_delta":
            self._delta, self._delta_raw = data, ev.raw
            return []
        if kind == "message_stop":
            self._stop_raw = ev.raw
            self.round_done = True
            return []
        if kind == "error":
            self.errored = True
        return [ev.raw]

    def _block_start(self, ev: SSEEvent, data: dict) -> list[bytes]:
        index = data.get("index")
        block = data.get("content_block")
        if type(index) is not int or not isinstance(block, dict):
            return [ev.raw]
        self._blocks[index] = dict(block)
        self._parts[index] = []
        if is_retrieve_block(block):
            self._withheld.add(index)
            return []
        if block.get("type") == "tool_use":
            self._real.append(str(block.get("id")))
        self._map[index] = self._next_index
        self._next_index += 1
        return [self._renumbered(ev, data, index)]

    def _block_event(self, ev: SSEEvent, data: dict, kind: str) -> list[bytes]:
        index = data.get("index")
        if type(index) is not int or index not in self._blocks:
            return [ev.raw]
        block, parts = self._blocks[index], self._parts[index]
        if kind == "content_block_delta":
            if isinstance(data.get("delta"), dict):
                apply_delta(block, data["delta"], parts)
        else:
            arguments = close_block(block, parts)
            if index in self._withheld:
                self._calls[index] = call_of(block, arguments)
        if index in self._withheld:
            return []
        return [self._renumbered(ev, data, index)]

    def _renumbered(self, ev: SSEEvent, data: dict, index: int) -> bytes:
        client_index = self._map[index]
        if client_index == index:
            return ev.raw
        return self._encode(ev.event, {**data, "index": client_index})

    # --- round boundaries ---

    def _round_usage(self) -> dict | None:
        delta_usage = self._delta.get("usage") if self._delta else None
        return merge_usage(self._start_usage, delta_usage if isinstance(delta_usage, dict) else None)

    def end_round(self) -> RoundFacts:
        stop = None
        if self._delta and isinstance(self._delta.get("delta"), dict):
            stop = self._delta["delta"].get("stop_reason")
        blocks = [self._blocks[i] for i in sorted(self._blocks)]
        calls = tuple(self._calls[i] for i in sorted(self._calls))
        # A withheld call whose stop event never came is not a call we can answer.
        complete = self.round_done and len(calls) == len(self._withheld)
        return RoundFacts(calls, tuple(self._real), stop, blocks, self._round_usage(), self._id,
                          complete)

    def finish(self, stop_override: str | None = None) -> list[bytes]:
        """Close the client's message after the last round."""
        changed = self.rounds > 0 or stop_override is not None
        if self._delta is None:
            delta: dict = {"type": "message_delta",
                           "delta": {"stop_reason": stop_override or "end_turn",
                                     "stop_sequence": None}}
            changed = True
        else:
            delta = dict(self._delta)
        if changed:
            usage = self._turn_usage()
            if usage is not None:
                delta["usage"] = usage
            if stop_override is not None:
                inner = delta.get("delta") if isinstance(delta.get("delta"), dict) else {}
                delta["delta"] = {**inner, "stop_reason": stop_override}
            head = self._encode("message_delta", delta)
        else:
            head = self._delta_raw
        tail = self._stop_raw or encode_event("message_stop", '{"type":"message_stop"}')
        return [head, tail]

    def abort(self) -> list[bytes]:
        """The provider's stream ended early: pass on whatever was held, unchanged."""
        return [b for b in (self._delta_raw, self._stop_raw) if b]

    def fail(self, status: int, message: str, error_type: str = "api_error") -> list[bytes]:
        """A continuation failed after the client already had part of the message."""
        data = {"type": "error", "error": {"type": error_type, "message": message}}
        return [encode_event("error", json.dumps(data))]
