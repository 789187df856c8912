"""Streams SSE responses through a usage tap and accounts for every provider request.

`responseheaders`: an event-stream response gets `flow.response.stream` set to a tap that reads
usage as the bytes pass and returns each chunk unchanged, so events reach the client as the
provider sends them. `response` / `error`: the request's record is built in the core's
accounting worker, off the event loop. Upstream errors pass through untouched either way.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Iterable

from mitmproxy import http

from headroom_core.pipeline import ResponseInfo

from .state import Shared, header_values

Chunks = bytes | Iterable[bytes]


def is_event_stream(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def chain(first: Callable[[bytes], Chunks], tap: Callable[[bytes], bytes]) -> Callable[[bytes], Chunks]:
    """Another addon's stream callable followed by our tap (which sees what the client gets)."""

    def both(chunk: bytes) -> Chunks:
        out = first(chunk)
        for part in [out] if isinstance(out, (bytes, bytearray)) else list(out):
            if part:
                tap(bytes(part))
        if not chunk:
            tap(b"")
        return out

    return both


_READ = (b"content-type", b"content-encoding")


def _response_headers(headers: http.Headers) -> dict[str, str]:
    # Only what accounting reads, copied: the worker thread must not share mitmproxy's object.
    found = header_values(headers, _READ)
    return {"content-type": found.get("content-type", ""),
            "content-encoding": found.get("content-encoding", "")}


def retrieval_fields(flow: http.HTTPFlow) -> dict:
    """What addons/retrieval.py recorded for the turn, as ResponseInfo fields."""
    meta = flow.metadata.get("headroom_retrieval")
    if not isinstance(meta, dict):
        return {}
    return {"retrieval_rounds": int(meta.get("rounds") or 0),
            "retrieved_hashes": tuple(str(h) for h in meta.get("hashes") or ()),
            "retrieved_bytes": int(meta.get("bytes") or 0)}


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Accounting:
    """Taps streams and hands each finished provider request to the core."""

    def __init__(self, shared: Shared, console: Callable[[str], None] | None = _stderr_line) -> None:
        self.shared = shared
        self.console = console

    def running(self) -> None:
        self.shared.core.console = self.console

    def done(self) -> None:
        self.shared.core.close()
        self.shared.close_services()

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.get(flow.id)
        resp = flow.response
        if state is None or state.ticket is None or resp is None:
            return
        if state.ticket.cache == "miss":
            resp.headers["x-headroom-cache"] = "miss"
        headers = _response_headers(resp.headers)
        if not is_event_stream(headers["content-type"]):
            return
        tap = self.shared.core.stream_tap(state.ticket, headers["content-encoding"])
        state.tap = tap
        resp.stream = chain(resp.stream, tap) if callable(resp.stream) else tap

    def response(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.pop(flow.id, None)
        if state is None or state.ticket is None or flow.response is None:
            return
        resp = flow.response
        self.shared.core.finish_later(state.ticket, ResponseInfo(
            status=resp.status_code, ended_at=resp.timestamp_end or time.time(),
            headers=_response_headers(resp.headers),
            body=None if state.tap is not None else resp.raw_content, tap=state.tap,
            **retrieval_fields(flow)))

    def error(self, flow: http.HTTPFlow) -> None:
        state = self.shared.flows.pop(flow.id, None)
        if state is None or state.ticket is None:
            return
        resp = flow.response
        message = flow.error.msg if flow.error else "flow ended without a response"
        self.shared.core.finish_later(state.ticket, ResponseInfo(
            status=resp.status_code if resp is not None else 0, ended_at=time.time(),
            headers=_response_headers(resp.headers) if resp is not None else {},
            body=None, tap=state.tap, error=message, **retrieval_fields(flow)))
