"""The in-process loopback relay for turns that may need `headroom_retrieve` answered.

Released mitmproxy cannot await inside a stream callable, so such a flow is pointed at this
small HTTP/1.1 server (h11 over asyncio streams, 127.0.0.1, ephemeral port) on the proxy's own
event loop. It accepts only requests carrying the id of a flow registered with it (a private
header, never forwarded), calls the provider with `headroom_core`'s upstream client, and runs
the turn's rounds (engine.py). A client that goes away cancels its handler: upstream streams
are closed and no continuation is started after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
import time
from dataclasses import dataclass
from typing import Awaitable, Callable

import h11

from ..errors import provider_error
from ..upstream import UpstreamClient, forwardable
from .common import TurnOutcome
from .engine import Turn, UpstreamReply, buffered_turn, is_event_stream, streamed_turn
from .http1 import Http1Client, narrow_accept_encoding

logger = logging.getLogger("headroom")

TOKEN_HEADER = "x-headroom-relay"
REGISTRATION_TTL_S = 600.0  # a flow that never reached the relay is forgotten after this
_RESPONSE_DROP = frozenset({"content-length", "content-encoding", "transfer-encoding",
                            "connection", "keep-alive"})


@dataclass
class Registration:
    """A flow the relay will serve once: where it really goes and how to answer retrieval."""

    flow_id: str
    upstream_base: str  # scheme://host:port of the real provider
    make_turn: Callable[[bytes], Turn]  # given the request body as it reaches the relay
    on_outcome: Callable[[TurnOutcome], None]
    provider: str = "anthropic"  # whose error envelope the relay's own errors use
    host_header: str | None = None  # the Host the provider expects (None: from the URL)
    created: float = 0.0


class _Reply:
    """An upstream response opened from UpstreamClient.stream, closed explicitly."""

    def __init__(self, context: contextlib.AbstractAsyncContextManager, response) -> None:
        self._context = context
        self._response = response
        self.status: int = response.status_code
        self.headers: list[tuple[str, str]] = list(response.headers.multi_items())
        self._closed = False

    def aiter_bytes(self):
        return self._response.aiter_bytes()  # decoded: gzip, br and zstd are undone here

    async def aread(self) -> bytes:
        return await self._response.aread()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._context.__aexit__(None, None, None)


async def open_reply(client: UpstreamClient, method: str, url: str,
                     headers: list[tuple[str, str]], body: bytes) -> UpstreamReply:
    context = client.stream(method, url, headers, body)
    response = await context.__aenter__()
    return _Reply(context, response)


class Relay:
    """Start with `start()` inside the running loop; `register` a flow before pointing it here."""

    def __init__(self, client: Http1Client | UpstreamClient | None = None,
                 ping_interval: float | None = None) -> None:
        self.client = client or Http1Client()
        self.ping_interval = ping_interval
        self._registered: dict[str, Registration] = {}
        self._server: asyncio.base_events.Server | None = None
        self._sock: socket.socket | None = None
        self._tasks: set[asyncio.Task] = set()
        self.port = 0

    # --- lifecycle ---

    def start(self) -> int:
        """Bind now (so the port is known at once) and serve on the running loop."""
        if self._sock is not None:
            return self.port
        _cache_missing_sniffio()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        sock.setblocking(False)
        self._sock = sock
        self.port = sock.getsockname()[1]
        task = asyncio.get_running_loop().create_task(self._listen(sock))
        self._keep(task)
        return self.port

    async def _listen(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=1 << 20)

    def _keep(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        elif self._sock is not None:
            self._sock.close()
        self._server = self._sock = None
        await self.client.aclose()

    # --- registry ---

    def register(self, registration: Registration) -> None:
        now = time.monotonic()
        registration.created = registration.created or now
        stale = [k for k, r in self._registered.items() if now - r.created > REGISTRATION_TTL_S]
        for key in stale:
            del self._registered[key]
        self._registered[registration.flow_id] = registration

    def unregister(self, flow_id: str) -> None:
        self._registered.pop(flow_id, None)

    @property
    def pending(self) -> int:
        return len(self._registered)

    # --- serving ---

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._keep(asyncio.current_task())
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request = await self._read_request(conn, reader)
                if request is None:
                    return
                handler = asyncio.ensure_future(self._handle(conn, writer, *request))
                watcher = asyncio.ensure_future(self._watch(conn, reader))
                await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
                if not handler.done():  # the client went away mid-response
                    handler.cancel()
                    with contextlib.suppress(BaseException):
                        await handler
                    return
                watcher.cancel()
                with contextlib.suppress(BaseException):
                    await watcher
                if handler.exception() is not None or conn.our_state is not h11.DONE:
                    return
                if conn.their_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (ConnectionError, h11.ProtocolError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            # The relay is closing. Ending quietly: asyncio's stream server logs an error for
            # a connection task that ends cancelled.
            return
        finally:
            writer.close()

    async def _read_request(self, conn: h11.Connection, reader: asyncio.StreamReader
                            ) -> tuple[h11.Request, bytes] | None:
        request, body = None, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await reader.read(1 << 16))
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            else:  # ConnectionClosed, PAUSED
                return None

    async def _watch(self, conn: h11.Connection, reader: asyncio.StreamReader) -> None:
        """Returns when the client closes its side (h11 keeps anything it sends meanwhile)."""
        while True:
            data = await reader.read(1 << 16)
            if not data:
                return
            conn.receive_data(data)

    async def _handle(self, conn: h11.Connection, writer: asyncio.StreamWriter,
                      request: h11.Request, body: bytes) -> None:
        # raw_items: the names as mitmproxy sent them (the client's spelling), in order.
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw_items()]
        token = next((v for k, v in headers if k.lower() == TOKEN_HEADER), "")
        registration = self._registered.pop(token, None) if token else None

        chunked = False

        async def write(data: bytes) -> None:
            if not data:
                return
            if chunked:  # the framing h11 would write, without its per-call state machine
                writer.write(b"%x\r\n%b\r\n" % (len(data), data))
            else:
                writer.write(conn.send(h11.Data(data=data)))
            await writer.drain()

        async def head(status: int, out_headers: list[tuple[str, str]]) -> None:
            nonlocal chunked
            if request.http_version == b"1.1" and not any(
                    k.lower() == "content-length" for k, _ in out_headers):
                out_headers = out_headers + [("transfer-encoding", "chunked")]
                chunked = True
            writer.write(conn.send(h11.Response(status_code=status, headers=out_headers)))
            await writer.drain()

        if registration is None:
            await self._answer(conn, writer, 403, "anthropic",
                               "headroom relay: unknown or already used flow token")
            return
        method = request.method.decode("ascii")
        url = registration.upstream_base + request.target.decode("latin-1")
        # The relay reads every body it relays: ask only for encodings it can undo.
        upstream_headers = [(k, narrow_accept_encoding(v) if k.lower() == "accept-encoding" else v)
                            for k, v in forwardable(headers)]
        if registration.host_header:
            upstream_headers.insert(0, ("host", registration.host_header))
        turn = registration.make_turn(body)
        reported = False

        def report() -> None:
            # Before the response's last bytes: the flow's response hooks (accounting, the
            # mitmweb comment) run as soon as mitmproxy has the whole response.
            nonlocal reported
            if reported:
                return
            reported = True
            try:
                registration.on_outcome(turn.outcome)
            except Exception:
                logger.exception("headroom relay: flow %s: outcome callback failed",
                                 registration.flow_id)

        def open_upstream(data: bytes) -> Awaitable[UpstreamReply]:
            if isinstance(self.client, Http1Client):
                return self.client.open(method, url, upstream_headers, data)
            return open_reply(self.client, method, url, upstream_headers, data)

        try:
            try:
                first = await open_upstream(body)
            except Exception as e:  # unreachable provider, TLS failure, timeout
                logger.warning("headroom relay: flow %s: upstream call failed: %s",
                               registration.flow_id, e)
                turn.outcome.error = f"upstream call failed: {type(e).__name__}"
                report()
                await self._answer(conn, writer, 502, registration.provider,
                                   f"headroom: the provider could not be reached ({type(e).__name__})")
                return
            await self._respond(turn, first, open_upstream, head, write, report)
            report()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        finally:
            report()

    async def _respond(self, turn: Turn, first: UpstreamReply, open_upstream, head, write,
                       report: Callable[[], None]) -> None:
        out_headers = [(k, v) for k, v in first.headers if k.lower() not in _RESPONSE_DROP]
        if first.status == 200 and is_event_stream(first.headers):
            try:
                await head(200, out_headers)
            except BaseException:
                await first.aclose()
                raise
            # The turn owns `first` from here: it reads the rest after the terminal event in
            # the background, so the provider connection is kept for the next call.
            kwargs = {"ping_interval": self.ping_interval} if self.ping_interval else {}
            await streamed_turn(turn, first, open_upstream, write, **kwargs)
            return
        try:
            if first.status == 200 and _is_json(first.headers):
                data = await first.aread()
                status, headers, body = await buffered_turn(turn, data, open_upstream)
                if headers is not None:
                    out_headers = [(k, v) for k, v in headers if k.lower() not in _RESPONSE_DROP]
                report()
                await head(status, out_headers + [("content-length", str(len(body)))])
                await write(body)
                return
            await head(first.status, out_headers)  # errors and anything else pass through
            async for chunk in first.aiter_bytes():
                await write(chunk)
        finally:
            await first.aclose()

    async def _answer(self, conn: h11.Connection, writer: asyncio.StreamWriter, status: int,
                      provider: str, message: str) -> None:
        err = provider_error(provider, status, message)
        headers = list(err.headers) + [("content-length", str(len(err.body))),
                                       ("connection", "close")]
        writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
        writer.write(conn.send(h11.Data(data=err.body)))
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()


def _cache_missing_sniffio() -> None:
    """httpcore tries `import sniffio` several times per request and falls back to asyncio when
    it is absent; a failed import searches sys.path every time (~0.25 ms each, about 1 ms per
    relayed request). Recording the absence makes each attempt fail at once, same outcome."""
    try:
        import sniffio  # noqa: F401
    except ImportError:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]


def _is_json(headers: list[tuple[str, str]]) -> bool:
    return any(k.lower() == "content-type" and "json" in v.lower() for k, v in headers)


