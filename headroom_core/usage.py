"""The provider's own token figures, from a JSON response body or from an SSE stream as it passes.

`Usage` keeps the four figures apart (DESIGN.md rule 7): uncached input, cache read, cache
write, output. Each provider spells them differently:

- Anthropic: `input_tokens` is already uncached; `cache_read_input_tokens`,
  `cache_creation_input_tokens` beside it. A stream sends them in `message_start` and again
  (cumulative, output growing) in `message_delta`.
- OpenAI Chat: `prompt_tokens` includes `prompt_tokens_details.cached_tokens`; the uncached
  part is the difference. A stream sends usage in its last chunk (`choices: []`) when the
  request asked for `stream_options.include_usage`.
- OpenAI Responses: `input_tokens` includes `input_tokens_details.cached_tokens`; a stream sends
  usage in `response.completed` (or `response.incomplete` / `response.failed`).
OpenAI reports no cache writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from .content_decoding import StreamDecoder
from .sse import SSEEvent, SSEParser
from .wire.common import Endpoint

__all__ = ["Usage", "usage_from_body", "StreamTap"]


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0  # uncached input
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_read_tokens + other.cache_read_tokens,
                     self.cache_write_tokens + other.cache_write_tokens)

    def __radd__(self, other: object) -> Usage:
        if other == 0:  # sum(usages) starts from 0
            return self
        return NotImplemented

    @property
    def total_input(self) -> int:
        """Every input token the provider read: uncached, cache read and cache write."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    def to_dict(self) -> dict[str, int]:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "cache_read_tokens": self.cache_read_tokens, "cache_write_tokens": self.cache_write_tokens}


def _count(value: Any) -> int:
    return value if type(value) is int and value > 0 else 0


def _anthropic_usage(u: dict) -> Usage:
    return Usage(_count(u.get("input_tokens")), _count(u.get("output_tokens")),
                 _count(u.get("cache_read_input_tokens")), _count(u.get("cache_creation_input_tokens")))


def _openai_usage(u: dict) -> Usage:
    """Chat (`prompt_tokens`) or Responses (`input_tokens`) shape, cached part split off."""
    if "prompt_tokens" in u:
        total, details, output = u.get("prompt_tokens"), u.get("prompt_tokens_details"), u.get("completion_tokens")
    else:
        total, details, output = u.get("input_tokens"), u.get("input_tokens_details"), u.get("output_tokens")
    cached = _count(details.get("cached_tokens")) if isinstance(details, dict) else 0
    total = _count(total)
    cached = min(cached, total)
    return Usage(total - cached, _count(output), cached, 0)


def usage_from_body(endpoint: Endpoint, doc: Any) -> Usage | None:
    """The usage of a non-streamed response body, or None when it carries none."""
    if not isinstance(doc, dict) or endpoint is Endpoint.ANTHROPIC_COUNT_TOKENS:
        return None  # count_tokens answers {"input_tokens": n}: a count, not spend
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return None
    if Endpoint(endpoint).provider == "anthropic":
        return _anthropic_usage(usage)
    return _openai_usage(usage)


def _loads(data: str) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None  # a data line that is not JSON (a keep-alive, a proxy's note): skipped


_ANTHROPIC_USAGE_KEYS = ("input_tokens", "output_tokens", "cache_read_input_tokens",
                         "cache_creation_input_tokens")
_RESPONSES_TERMINAL = ("response.completed", "response.incomplete", "response.failed")
_RESPONSES_PARSED = frozenset({"response.created", "response.in_progress", "error", *_RESPONSES_TERMINAL})


class StreamTap:
    """Reads model, usage, stop reason and errors from an SSE response as its chunks pass.

    `feed` takes the raw chunks mitmproxy hands a stream callable (still content-encoded, cut
    anywhere) and never raises: a problem is recorded in `tap_error` and parsing stops, while
    the bytes themselves go to the client untouched by the caller. Call `finish()` when the
    stream ends (mitmproxy's final b""; feeding b"" itself does nothing): it flushes the decoder
    and a last event that lacked its blank line.
    """

    def __init__(self, endpoint: Endpoint, content_encoding: str | None = None) -> None:
        self.endpoint = endpoint
        self.tap_error: str | None = None
        self.model: str | None = None
        self.stop_reason: str | None = None
        self.stream_error: dict | None = None  # the body of a mid-stream error event
        self.events = 0
        self.complete = False  # message_stop / [DONE] / a terminal response.* event seen
        self._usage: Usage | None = None
        self._anthropic_fields: dict[str, int] = {}
        self._finished = False
        self._parser = SSEParser()
        self._decoder: StreamDecoder | None = None
        # Others that want the parsed events (cache fill): called after our own reading.
        self.observers: list[Callable[[SSEEvent], None]] = []
        try:
            provider = Endpoint(endpoint).provider
            self._decoder = StreamDecoder(content_encoding)
        except ValueError as e:
            self.tap_error = str(e)
            return
        if provider == "anthropic":
            self._on_event = self._anthropic
        elif endpoint is Endpoint.OPENAI_RESPONSES:
            self._on_event = self._responses
        else:
            self._on_event = self._chat

    @property
    def usage(self) -> Usage | None:
        return self._usage

    def feed(self, chunk: bytes) -> None:
        if not chunk or self.tap_error is not None or self._finished:
            return  # an empty chunk carries nothing; the end of the stream is finish()
        try:
            data = self._decoder.feed(chunk)  # type: ignore[union-attr]
            if data:
                for event in self._parser.feed(data):
                    self._handle(event)
        except Exception as e:  # noqa: BLE001 - a tap must never break the stream it watches
            self._fail(e)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self.tap_error is not None:
            return
        try:
            data = self._decoder.flush()  # type: ignore[union-attr]
            for event in [*self._parser.feed(data), *self._parser.close()]:
                self._handle(event)
        except Exception as e:  # noqa: BLE001
            self._fail(e)

    def _fail(self, error: Exception) -> None:
        self.tap_error = f"{type(error).__name__}: {error}"

    def _handle(self, event: SSEEvent) -> None:
        self.events += 1
        self._on_event(event)
        for observe in self.observers:
            observe(event)

    # --- Anthropic ---

    def _anthropic(self, event: SSEEvent) -> None:
        kind = event.event
        if kind in ("content_block_delta", "content_block_start", "content_block_stop", "ping"):
            return  # the bulk of a stream: nothing to account for, not worth a JSON parse
        doc = _loads(event.data)
        if not isinstance(doc, dict):
            return
        kind = kind or doc.get("type")
        if kind == "message_start":
            message = doc.get("message")
            if isinstance(message, dict):
                if type(message.get("model")) is str:
                    self.model = message["model"]
                self._anthropic_usage(message.get("usage"))
        elif kind == "message_delta":
            delta = doc.get("delta")
            if isinstance(delta, dict) and type(delta.get("stop_reason")) is str:
                self.stop_reason = delta["stop_reason"]
            self._anthropic_usage(doc.get("usage"))
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.stream_error = doc

    def _anthropic_usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        for key in _ANTHROPIC_USAGE_KEYS:  # message_delta's figures are cumulative: later wins
            if type(usage.get(key)) is int:
                self._anthropic_fields[key] = usage[key]
        self._usage = _anthropic_usage(self._anthropic_fields)

    # --- OpenAI Chat Completions (and other OpenAI streams) ---

    def _chat(self, event: SSEEvent) -> None:
        data = event.data
        if data == "[DONE]":
            self.complete = True
            return
        # Most chunks are one token of content: skip the JSON parse when a compact chunk shows
        # no usage, no finish reason and no error and the model is already known.
        if (self.model is not None and '"finish_reason":null' in data and '"error"' not in data
                and ('"usage":null' in data or '"usage"' not in data)):
            return
        doc = _loads(data)
        if not isinstance(doc, dict):
            return
        if isinstance(doc.get("error"), dict):
            self.stream_error = doc
            return
        if type(doc.get("model")) is str and doc["model"]:
            self.model = doc["model"]
        choices = doc.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and type(choice.get("finish_reason")) is str:
                self.stop_reason = choice["finish_reason"]
        if isinstance(doc.get("usage"), dict):
            self._usage = _openai_usage(doc["usage"])

    # --- OpenAI Responses ---

    def _responses(self, event: SSEEvent) -> None:
        kind = event.event
        if kind is not None and kind not in _RESPONSES_PARSED:
            return  # deltas and item events: nothing to account for
        doc = _loads(event.data)
        if not isinstance(doc, dict):
            return
        kind = kind or doc.get("type")
        if kind == "error":
            self.stream_error = doc
            return
        response = doc.get("response")
        if not isinstance(response, dict):
            return
        if type(response.get("model")) is str:
            self.model = response["model"]
        if kind not in _RESPONSES_TERMINAL:
            return
        self.complete = True
        if isinstance(response.get("usage"), dict):
            self._usage = _openai_usage(response["usage"])
        details = response.get("incomplete_details")
        if isinstance(details, dict) and type(details.get("reason")) is str:
            self.stop_reason = details["reason"]
        elif type(response.get("status")) is str:
            self.stop_reason = response["status"]
        if kind == "response.failed":
            self.stream_error = doc
