"""A lean HTTP/1.1 client for the relay's provider calls (asyncio streams + h11).

The relay makes one or more provider calls per relayed turn and forwards every event of their
streams, so per-call and per-chunk cost is latency the client sees. Measured on loopback, httpx
spends ~1.5 ms of CPU per streamed call above a raw socket; this client keeps h11's parsing and
drops the layers (auth, redirects, cookies, URL merging) a relay never uses. It keeps idle
connections per origin, decodes gzip / deflate bodies, applies mitmproxy's upstream TLS
settings, and closes (never reuses) a connection whose response was not read to the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import AsyncIterator
from urllib.parse import urlsplit

import h11

from ..content_decoding import StreamDecoder

DECODABLE = ("gzip", "deflate", "identity")
_MAX_IDLE_PER_ORIGIN = 16


class UpstreamError(ConnectionError):
    """The provider could not be reached or broke the connection."""


@dataclass(frozen=True)
class Timeouts:
    connect: float = 30.0
    read: float = 600.0  # between two chunks: a model can think for minutes
    write: float = 60.0


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.h11 = h11.Connection(h11.CLIENT)

    def usable(self) -> bool:
        return not self.writer.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()


class Http1Reply:
    """A response whose head has arrived; read the body with `aiter_bytes` or `aread`."""

    def __init__(self, client: "Http1Client", origin: tuple, conn: _Conn,
                 response: h11.Response) -> None:
        self._client, self._origin, self._conn = client, origin, conn
        self.status: int = response.status_code
        self.headers: list[tuple[str, str]] = [(k.decode("latin-1"), v.decode("latin-1"))
                                               for k, v in response.headers.raw_items()]
        encoding = next((v for k, v in self.headers if k.lower() == "content-encoding"), "")
        self._decoder = StreamDecoder(encoding or None)
        self._done = False

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        conn = self._conn
        try:
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(self._client.timeouts.read):
                        data = await conn.reader.read(1 << 16)
                    conn.h11.receive_data(data)
                elif isinstance(event, h11.Data):
                    out = self._decoder.feed(bytes(event.data))
                    if out:
                        yield out
                elif isinstance(event, h11.EndOfMessage):
                    tail = self._decoder.flush()
                    self._done = True
                    if tail:
                        yield tail
                    return
                else:  # ConnectionClosed before the end of the body
                    raise UpstreamError("the provider closed the connection mid-response")
        except h11.RemoteProtocolError as e:
            raise UpstreamError(f"bad HTTP from the provider: {e}") from e

    async def aread(self) -> bytes:
        return b"".join([chunk async for chunk in self.aiter_bytes()])

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            self._client._release(self._origin, conn)
        else:
            conn.close()


class Http1Client:
    """One per relay; `aclose()` closes the idle connections."""

    def __init__(self, verify: ssl.SSLContext | bool = True, timeouts: Timeouts = Timeouts()) -> None:
        self.timeouts = timeouts
        if isinstance(verify, ssl.SSLContext):
            self._ssl = verify
        else:
            self._ssl = ssl.create_default_context(cafile=_default_ca_bundle())
            if not verify:
                self._ssl.check_hostname = False
                self._ssl.verify_mode = ssl.CERT_NONE
        with contextlib.suppress(NotImplementedError, ssl.SSLError):
            self._ssl.set_alpn_protocols(["http/1.1"])
        self._idle: dict[tuple, list[_Conn]] = {}

    async def _connect(self, origin: tuple) -> _Conn:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(self.timeouts.connect):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=self._ssl if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None, limit=1 << 20)
        except (OSError, asyncio.TimeoutError, ssl.SSLError) as e:
            raise UpstreamError(f"cannot connect to {host}:{port}: {type(e).__name__}: {e}") from e
        return _Conn(reader, writer)

    def _release(self, origin: tuple, conn: _Conn) -> None:
        idle = self._idle.setdefault(origin, [])
        if conn.usable() and len(idle) < _MAX_IDLE_PER_ORIGIN:
            idle.append(conn)
        else:
            conn.close()

    async def open(self, method: str, url: str, headers: list[tuple[str, str]],
                   body: bytes) -> Http1Reply:
        """Send a request and wait for the response head. A reused idle connection the
        provider had closed meanwhile (no byte of a response came back) is retried once on a
        fresh one: the request never reached the provider."""
        parts = urlsplit(url)
        scheme = parts.scheme
        port = parts.port or (443 if scheme == "https" else 80)
        origin = (scheme, parts.hostname or "", port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        names = {k.lower() for k, _ in headers}
        head = list(headers)
        if "host" not in names:
            default = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
            host = parts.hostname if default else f"{parts.hostname}:{port}"
            head.insert(0, ("host", host))
        head.append(("content-length", str(len(body))))
        request = h11.Request(method=method, target=target, headers=head)
        idle = self._idle.get(origin) or []
        while idle:
            conn = idle.pop()
            if not conn.usable():
                conn.close()
                continue
            try:
                return await self._exchange(origin, conn, request, body, reused=True)
            except _StaleConnection:
                continue
        return await self._exchange(origin, await self._connect(origin), request, body,
                                    reused=False)

    async def _exchange(self, origin: tuple, conn: _Conn, request: h11.Request, body: bytes,
                        reused: bool) -> Http1Reply:
        fresh = not reused  # once true, a failure is the provider's, not a stale connection
        try:
            data = conn.h11.send(request) + conn.h11.send(h11.Data(data=body)) + \
                conn.h11.send(h11.EndOfMessage())
            conn.writer.write(data)
            async with asyncio.timeout(self.timeouts.write):
                await conn.writer.drain()
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    async with asyncio.timeout(self.timeouts.read):
                        chunk = await conn.reader.read(1 << 16)
                    if not chunk and conn.h11.their_state is h11.SEND_RESPONSE and not fresh:
                        raise _StaleConnection()
                    fresh = True  # bytes came back: whatever happens now is not staleness
                    conn.h11.receive_data(chunk)
                elif isinstance(event, h11.InformationalResponse):
                    continue
                elif isinstance(event, h11.Response):
                    return Http1Reply(self, origin, conn, event)
                else:
                    raise UpstreamError("the provider closed the connection without a response")
        except _StaleConnection:
            conn.close()
            raise
        except (OSError, asyncio.TimeoutError, h11.ProtocolError) as e:
            conn.close()
            if isinstance(e, ConnectionError) and not fresh:
                raise _StaleConnection() from e
            raise UpstreamError(f"{type(e).__name__}: {e}") from e
        except BaseException:
            conn.close()
            raise

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()


def _default_ca_bundle() -> str | None:
    """certifi's bundle, the one mitmproxy trusts by default (None: the system store)."""
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


class _StaleConnection(Exception):
    """An idle keep-alive connection the provider had already closed."""


def narrow_accept_encoding(value: str) -> str:
    """The client's accepted encodings that this client can undo, in its order."""
    kept = [p.strip() for p in value.split(",")
            if p.split(";", 1)[0].strip().lower() in DECODABLE]
    return ", ".join(kept) or "identity"
