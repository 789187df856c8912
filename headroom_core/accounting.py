"""What a finished request cost: our token count of the request as the client sent it, and the
provider's usage, read from the response body or from the stream as it passed.

All of it runs in the core's accounting worker (or in the stream callable for the tap, which
only feeds bytes), never as extra work between the client and the provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .content_decoding import StreamDecoder
from .jsonfmt import BIG_TEXT, decode_text, utf8_text
from .usage import StreamTap, Usage, usage_from_body
from .wire.common import Endpoint

MAX_USAGE_BODY = 16 << 20  # a response body larger than this is not parsed for usage


@dataclass(frozen=True)
class RequestFacts:
    """From the client's request body: our token count, its model and whether it asked to stream."""

    tokens: int = 0
    model: str = ""
    stream: bool = False


@dataclass(frozen=True)
class Outcome:
    """From the response: the provider's usage, the model it named, an error it reported."""

    usage: Usage = Usage()
    model: str = ""
    error: str = ""


def _json(body: bytes) -> Any:
    if not body or body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        if len(body) > BIG_TEXT:  # one C call would hold the GIL the event loop needs (~0.1 s / 10 MB)
            return decode_text(utf8_text(body))
        return json.loads(body)
    except (ValueError, RecursionError):  # malformed, not UTF-8, or absurdly deep
        return None


def request_facts(body: bytes, endpoint: Endpoint | None, count: bool = True) -> RequestFacts:
    """Facts about a request body; a body that is not JSON yields zeros (it was still forwarded)."""
    doc = _json(body)
    if not isinstance(doc, dict):
        return RequestFacts()
    model = doc.get("model")
    tokens = 0
    if count and endpoint is not None:
        from .tokens import count_request  # tiktoken: loaded by the first accounting, not at start

        tokens = count_request(doc, endpoint)
    return RequestFacts(tokens, model if isinstance(model, str) else "", doc.get("stream") is True)


def _error_text(doc: Any) -> str:
    err = doc.get("error") if isinstance(doc, dict) else None
    if isinstance(err, dict):
        kind, message = err.get("type") or err.get("code"), err.get("message")
        return f"{kind}: {message}" if message else str(kind or "error")
    return ""


def body_outcome(endpoint: Endpoint | None, status: int, headers: Mapping[str, str],
                 body: bytes | None) -> Outcome:
    """Usage and model from a buffered response body (content-encoding undone here)."""
    if not body or endpoint is None or len(body) > MAX_USAGE_BODY:
        return Outcome()
    if "json" not in headers.get("content-type", "").lower():
        return Outcome()
    encoding = headers.get("content-encoding", "")
    if encoding and encoding.lower() != "identity":
        try:
            decoder = StreamDecoder(encoding)
            body = decoder.feed(body) + decoder.flush()
        except ValueError:
            return Outcome(error=f"undecodable {encoding} response body")
    doc = _json(body)
    if not isinstance(doc, dict):
        return Outcome()
    model = doc.get("model")
    return Outcome(usage_from_body(endpoint, doc) or Usage(),
                   model if isinstance(model, str) else "",
                   _error_text(doc) if status >= 400 else "")


class StreamAccount:
    """The stream callable for an SSE response: hands each chunk to a usage tap and returns it
    unchanged (the tap never raises; a problem only ends its parsing)."""

    def __init__(self, endpoint: Endpoint | None, content_encoding: str | None) -> None:
        self.tap = StreamTap(endpoint or Endpoint.OPENAI_OTHER, content_encoding or None)

    def __call__(self, chunk: bytes) -> bytes:
        self.tap.feed(chunk)
        return chunk

    def outcome(self) -> Outcome:
        """Call once the stream ended (or broke off): what it said about usage and errors."""
        tap = self.tap
        tap.finish()
        error = ""
        if tap.stream_error is not None:
            error = "stream error: " + (_error_text(tap.stream_error) or "error event")
        elif tap.tap_error:
            error = f"usage not read: {tap.tap_error}"
        return Outcome(tap.usage or Usage(), tap.model or "", error)
