"""A fake LLM provider on loopback: Anthropic Messages, OpenAI Chat Completions and Responses.

Raw HTTP/1.1 on asyncio (keep-alive, content-length or chunked request bodies), run on its own
event loop in a background thread so sync tests, async tests and the benchmark can all use it.
It records every request exactly as received (method, target, headers in order, body bytes) and
answers with canned JSON or SSE, or with replies a test scripts: status, headers, body, SSE
events with delays between them, gzip.

    provider = FakeProvider().start()
    provider.script(Reply(status=429, headers=[("retry-after", "7")], body=b"{}"))
    ... requests ...
    provider.requests[-1].body
    provider.stop()
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

MODEL_ANTHROPIC = "claude-sonnet-4-5"
MODEL_OPENAI = "gpt-4o"


@dataclass(frozen=True)
class Recorded:
    """One request as the provider received it."""

    method: str
    target: str  # path and query as sent
    headers: tuple[tuple[str, str], ...]  # in order, names as sent
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_names(self) -> list[str]:
        return [k.lower() for k, _ in self.headers]


@dataclass
class Reply:
    """What to answer. `events` (raw SSE blocks) makes a chunked event stream, else `body`."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    events: list[bytes] | None = None
    event_delay: float = 0.0  # seconds between two events
    first_delay: float = 0.0  # seconds before the response headers
    gzip: bool = False  # content-encoding: gzip (flushed per event for streams)
    content_type: str | None = None


# --- canned bodies --------------------------------------------------------------------------

def sse(event: str | None, data: str | dict) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {text}\n\n".encode()


def anthropic_message(model: str = MODEL_ANTHROPIC, text: str = "Hello!", input_tokens: int = 25,
                      output_tokens: int = 7, cache_read: int = 0, cache_write: int = 0) -> dict:
    return {"id": "msg_fake01", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_read_input_tokens": cache_read,
                      "cache_creation_input_tokens": cache_write}}


def anthropic_events(model: str = MODEL_ANTHROPIC, pieces: tuple[str, ...] = ("Hel", "lo", "!"),
                     input_tokens: int = 25, output_tokens: int = 7, cache_read: int = 0,
                     cache_write: int = 0) -> list[bytes]:
    start = anthropic_message(model, "", input_tokens, 1, cache_read, cache_write)
    start["content"] = []
    start["stop_reason"] = None
    events = [sse("message_start", {"type": "message_start", "message": start}),
              sse("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}}),
              sse("ping", {"type": "ping"})]
    events += [sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": p}})
               for p in pieces]
    events += [sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
               sse("message_delta", {"type": "message_delta",
                                     "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                     "usage": {"output_tokens": output_tokens}}),
               sse("message_stop", {"type": "message_stop"})]
    return events


def openai_chat(model: str = MODEL_OPENAI, text: str = "Hello!", prompt_tokens: int = 30,
                completion_tokens: int = 6, cached: int = 0) -> dict:
    return {"id": "chatcmpl-fake01", "object": "chat.completion", "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens,
                      "prompt_tokens_details": {"cached_tokens": cached}}}


def openai_chat_events(model: str = MODEL_OPENAI, pieces: tuple[str, ...] = ("Hel", "lo", "!"),
                       prompt_tokens: int = 30, completion_tokens: int = 6, cached: int = 0,
                       include_usage: bool = True) -> list[bytes]:
    def chunk(delta: dict, finish: str | None = None) -> dict:
        return {"id": "chatcmpl-fake01", "object": "chat.completion.chunk", "created": 1700000000,
                "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    events = [sse(None, chunk({"role": "assistant", "content": ""}))]
    events += [sse(None, chunk({"content": p})) for p in pieces]
    events.append(sse(None, chunk({}, "stop")))
    if include_usage:
        usage = openai_chat(model, "", prompt_tokens, completion_tokens, cached)["usage"]
        events.append(sse(None, {"id": "chatcmpl-fake01", "object": "chat.completion.chunk",
                                 "created": 1700000000, "model": model, "choices": [],
                                 "usage": usage}))
    events.append(sse(None, "[DONE]"))
    return events


def openai_response(model: str = MODEL_OPENAI, text: str = "Hello!", input_tokens: int = 40,
                    output_tokens: int = 5, cached: int = 0) -> dict:
    return {"id": "resp_fake01", "object": "response", "created_at": 1700000000,
            "status": "completed", "model": model,
            "output": [{"type": "message", "id": "msg_fake01", "status": "completed",
                        "role": "assistant",
                        "content": [{"type": "output_text", "text": text, "annotations": []}]}],
            "usage": {"input_tokens": input_tokens,
                      "input_tokens_details": {"cached_tokens": cached},
                      "output_tokens": output_tokens,
                      "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": input_tokens + output_tokens}}


def openai_response_events(model: str = MODEL_OPENAI, pieces: tuple[str, ...] = ("Hel", "lo", "!"),
                           input_tokens: int = 40, output_tokens: int = 5,
                           cached: int = 0) -> list[bytes]:
    created = openai_response(model, "", 0, 0)
    created.update(status="in_progress", output=[], usage=None)
    events = [sse("response.created", {"type": "response.created", "response": created})]
    events += [sse("response.output_text.delta", {"type": "response.output_text.delta",
                                                  "item_id": "msg_fake01", "output_index": 0,
                                                  "content_index": 0, "delta": p})
               for p in pieces]
    done = openai_response(model, "".join(pieces), input_tokens, output_tokens, cached)
    events.append(sse("response.completed", {"type": "response.completed", "response": done}))
    return events


def default_reply(method: str, path: str, body: bytes) -> Reply:
    """What a real provider would roughly answer, chosen by path and the body's `stream` flag."""
    path = path.split("?", 1)[0]
    try:
        doc = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        doc = None
    if not isinstance(doc, dict):
        err = {"type": "error", "error": {"type": "invalid_request_error",
                                          "message": "body is not a JSON object"}}
        return Reply(400, body=json.dumps(err).encode())
    stream = bool(doc.get("stream"))
    model = doc.get("model") if isinstance(doc.get("model"), str) else None
    if path.endswith("/v1/messages/count_tokens"):
        return Reply(body=json.dumps({"input_tokens": 12}).encode())
    if path.endswith("/v1/messages"):
        model = model or MODEL_ANTHROPIC
        if stream:
            return Reply(events=anthropic_events(model))
        return Reply(body=json.dumps(anthropic_message(model)).encode())
    if path.endswith("/v1/chat/completions"):
        model = model or MODEL_OPENAI
        if stream:
            opts = doc.get("stream_options") or {}
            return Reply(events=openai_chat_events(model, include_usage=bool(opts.get("include_usage"))))
        return Reply(body=json.dumps(openai_chat(model)).encode())
    if path.endswith("/v1/responses"):
        model = model or MODEL_OPENAI
        if stream:
            return Reply(events=openai_response_events(model))
        return Reply(body=json.dumps(openai_response(model)).encode())
    if path.endswith("/v1/models"):
        return Reply(body=json.dumps({"object": "list", "data": [{"id": MODEL_OPENAI,
                                                                  "object": "model"}]}).encode())
    return Reply(body=json.dumps({"method": method, "path": path, "bytes": len(body)}).encode())


# --- the server -----------------------------------------------------------------------------

class FakeProvider:
    """Run with start()/stop() (or as a context manager); `url` is its base URL."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 ssl_context: "ssl.SSLContext | None" = None) -> None:
        self.host, self.port = host, port
        self.ssl_context = ssl_context  # serve HTTPS with this context
        self.requests: list[Recorded] = []
        self.handler: Callable[[Recorded], Reply | None] | None = None
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{self.host}:{self.port}"

    def script(self, *replies: Reply) -> None:
        """The next requests get these replies, in order; later ones get the defaults."""
        with self._lock:
            self._script.extend(replies)

    def reset(self) -> None:
        with self._lock:
            self._script.clear()
            self.requests.clear()
            self.handler = None

    def start(self) -> "FakeProvider":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-provider",
                                        daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        if not self._loop:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port,
                                                  limit=1 << 20, ssl=self.ssl_context)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server
        self._server.close()
        for w in list(self._writers):
            w.close()
        await self._server.wait_closed()

    def _next_reply(self, rec: Recorded) -> Reply:
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.handler:
            reply = self.handler(rec)
            if reply is not None:
                return reply
        return default_reply(rec.method, rec.target, rec.body)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                rec = await self._read_request(reader)
                if rec is None:
                    return
                self.requests.append(rec)
                await self._write_reply(writer, self._next_reply(rec))
                if (rec.header("connection") or "").lower() == "close":
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ssl.SSLError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _read_request(self, reader: asyncio.StreamReader) -> Recorded | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        received = time.monotonic()
        lines = head[:-4].decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = tuple((k, v.strip()) for k, _, v in (h.partition(":") for h in lines[1:]))
        lower = {k.lower(): v for k, v in headers}
        if lower.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                body += await reader.readexactly(size)
                await reader.readexactly(2)
            data = bytes(body)
        else:
            data = await reader.readexactly(int(lower.get("content-length", "0")))
        return Recorded(method, target, headers, data, received)

    async def _write_reply(self, writer: asyncio.StreamWriter, reply: Reply) -> None:
        if reply.first_delay:
            await asyncio.sleep(reply.first_delay)
        streamed = reply.events is not None
        ctype = reply.content_type or ("text/event-stream" if streamed else "application/json")
        head = [f"HTTP/1.1 {reply.status} X", f"content-type: {ctype}"]
        head += [f"{k}: {v}" for k, v in reply.headers]
        compressor = zlib.compressobj(6, zlib.DEFLATED, 31) if reply.gzip else None
        if compressor:
            head.append("content-encoding: gzip")
        if not streamed:
            body = reply.body
            if compressor:
                body = compressor.compress(body) + compressor.flush()
            head.append(f"content-length: {len(body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
            await writer.drain()
            return
        head.append("transfer-encoding: chunked")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
        await writer.drain()
        for i, event in enumerate(reply.events or []):
            if i and reply.event_delay:
                await asyncio.sleep(reply.event_delay)
            data = compressor.compress(event) + compressor.flush(zlib.Z_SYNC_FLUSH) if compressor else event
            if data:
                writer.write(b"%x\r\n%s\r\n" % (len(data), data))
                await writer.drain()
        tail = compressor.flush() if compressor else b""
        if tail:
            writer.write(b"%x\r\n%s\r\n" % (len(tail), tail))
        writer.write(b"0\r\n\r\n")
        await writer.drain()
