"""The relay's HTTP/1.1 upstream client: keep-alive, stale connections, decoding, TLS, errors."""

from __future__ import annotations

import asyncio
import ssl
from types import SimpleNamespace

import pytest

from fake_provider import FakeProvider, Reply
from headroom_core.retrieval.http1 import (Http1Client, Timeouts, UpstreamError,
                                           narrow_accept_encoding)
from tls_fixtures import HTTPSServer, issue_cert, make_ca  # tests/ is on sys.path


class CountingServer:
    """Raw HTTP/1.1 on loopback: counts connections; can close each one after a response."""

    def __init__(self, response: bytes, close_after: bool = False) -> None:
        self.response, self.close_after = response, close_after
        self.connections = 0
        self.requests = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader, writer) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                await reader.readexactly(length)
                self.requests += 1
                writer.write(self.response)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        self.server.close()
        await self.server.wait_closed()


OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"


async def call(client: Http1Client, url: str, body: bytes = b"{}") -> tuple[int, bytes]:
    reply = await client.open("POST", url, [("content-type", "application/json")], body)
    try:
        return reply.status, await reply.aread()
    finally:
        await reply.aclose()


async def test_connections_are_kept_alive():
    server = CountingServer(OK)
    port = await server.start()
    client = Http1Client()
    for _ in range(3):
        assert await call(client, f"http://127.0.0.1:{port}/v1/messages") == (200, b"{}")
    await client.aclose()
    await server.stop()
    assert server.requests == 3 and server.connections == 1


async def test_a_connection_the_server_closed_is_replaced():
    server = CountingServer(OK, close_after=True)
    port = await server.start()
    client = Http1Client()
    for _ in range(3):
        assert (await call(client, f"http://127.0.0.1:{port}/"))[0] == 200
        await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
    await client.aclose()
    await server.stop()
    assert server.requests == 3 and server.connections == 3


async def test_an_unread_response_closes_its_connection():
    server = CountingServer(OK)
    port = await server.start()
    client = Http1Client()
    reply = await client.open("POST", f"http://127.0.0.1:{port}/", [], b"{}")
    await reply.aclose()  # body never read: the connection cannot be reused
    assert (await call(client, f"http://127.0.0.1:{port}/"))[0] == 200
    await client.aclose()
    await server.stop()
    assert server.connections == 2


async def test_gzip_stream_is_decoded_and_headers_kept():
    events = [b"event: a\ndata: {}\n\n", b"event: b\ndata: {}\n\n"]
    with FakeProvider() as provider:
        provider.script(Reply(events=events, gzip=True, headers=[("X-Request-Id", "r1")]))
        client = Http1Client()
        reply = await client.open("POST", provider.url + "/v1/messages",
                                  [("accept-encoding", "gzip")], b"{}")
        body = b"".join([c async for c in reply.aiter_bytes()])
        await reply.aclose()
        await client.aclose()
    assert body == b"".join(events)
    assert ("X-Request-Id", "r1") in reply.headers, "header names keep their spelling"
    sent = provider.requests[0]
    assert sent.header("host") == provider.url.removeprefix("http://")
    assert sent.header("content-length") == "2"


async def test_body_cut_short_is_an_upstream_error():
    server = CountingServer(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n{}", close_after=True)
    port = await server.start()
    client = Http1Client()
    reply = await client.open("POST", f"http://127.0.0.1:{port}/", [], b"{}")
    with pytest.raises(UpstreamError):
        await reply.aread()
    await reply.aclose()
    await client.aclose()
    await server.stop()


async def test_unreachable_and_slow_providers():
    client = Http1Client(timeouts=Timeouts(connect=1, read=0.2, write=1))
    with pytest.raises(UpstreamError):
        await client.open("POST", "http://127.0.0.1:9/", [], b"{}")
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
    port = server.sockets[0].getsockname()[1]
    with pytest.raises(UpstreamError):
        await client.open("POST", f"http://127.0.0.1:{port}/", [], b"{}")
    server.close()
    await client.aclose()


def test_accept_encoding_is_narrowed_to_what_the_relay_decodes():
    assert narrow_accept_encoding("gzip, deflate, br, zstd") == "gzip, deflate"
    assert narrow_accept_encoding("br") == "identity"


async def test_https_with_mitmproxys_trusted_ca(tmp_path):
    from headroom_addons.retrieval import upstream_verify

    ca = make_ca(tmp_path)
    cert, key = issue_cert(ca, tmp_path, ["127.0.0.1", "localhost"])
    server = HTTPSServer(cert, key).start()
    try:
        url = f"https://localhost:{server.port}/v1/messages"
        strict = Http1Client(verify=upstream_verify(SimpleNamespace(
            ssl_insecure=False, ssl_verify_upstream_trusted_ca=str(ca.cert_path),
            ssl_verify_upstream_trusted_confdir=None)))
        status, body = await call(strict, url)
        assert status == 200 and b"msg_test" in body
        default = Http1Client(verify=True)  # the system store does not know this CA
        with pytest.raises(UpstreamError):
            await call(default, url)
        insecure = Http1Client(verify=upstream_verify(SimpleNamespace(ssl_insecure=True)))
        assert (await call(insecure, url))[0] == 200
        for c in (strict, default, insecure):
            await c.aclose()
    finally:
        server.stop()
    assert isinstance(upstream_verify(SimpleNamespace(ssl_insecure=False)), bool)
    assert isinstance(upstream_verify(SimpleNamespace(
        ssl_verify_upstream_trusted_ca=str(ca.cert_path))), ssl.SSLContext)
