"""An async HTTP client for the calls headroom makes to a provider itself (retrieval
continuations, a relayed stream), on the same event loop as the proxy.

httpx is imported on first use. `trust_env=False`: the proxy's own environment (HTTPS_PROXY set
for `headroom run`, say) must never loop its upstream calls back through itself. These calls do
not pass through mitmproxy, so its upstream settings (trusted CA, timeouts) are given here.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Iterable, Mapping

if TYPE_CHECKING:
    import httpx

# Never copied from the client's request to an upstream call: hop-by-hop headers, the length
# (recomputed), the host (from the URL), and our own private headers.
_DROP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te",
                   "trailer", "upgrade", "content-length", "host"})


def forwardable(headers: Iterable[tuple[str, str]] | Mapping[str, str]) -> list[tuple[str, str]]:
    """The request headers an upstream call may carry (order kept)."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(k, v) for k, v in items
            if k.lower() not in _DROP and not k.lower().startswith("x-headroom-")]


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes  # as sent (still content-encoded)


class UpstreamClient:
    """One pooled client per process; close it with `aclose()` when the proxy stops."""

    def __init__(self, verify: str | bool = True, timeout_s: float = 600.0,
                 connect_timeout_s: float = 10.0, max_connections: int = 100) -> None:
        self.verify = verify  # True, False, or a CA bundle file
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_connections = max_connections
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> "httpx.AsyncClient":
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                verify=self.verify, trust_env=False, follow_redirects=False,
                timeout=httpx.Timeout(self.timeout_s, connect=self.connect_timeout_s),
                limits=httpx.Limits(max_connections=self.max_connections))
            # Only the caller's headers go out: no user-agent or accept-encoding of httpx's own.
            self._client.headers.clear()
        return self._client

    async def send(self, method: str, url: str, headers: Iterable[tuple[str, str]] | Mapping[str, str],
                   body: bytes) -> UpstreamResponse:
        """One buffered call; the body comes back as sent (not decoded)."""
        async with self.stream(method, url, headers, body) as resp:
            raw = b"".join([chunk async for chunk in resp.aiter_raw()])
            return UpstreamResponse(resp.status_code, tuple(resp.headers.multi_items()), raw)

    @contextlib.asynccontextmanager
    async def stream(self, method: str, url: str,
                     headers: Iterable[tuple[str, str]] | Mapping[str, str],
                     body: bytes) -> AsyncIterator["httpx.Response"]:
        """A streamed call: read it with `aiter_raw()` (as sent) or `aiter_bytes()` (decoded).
        The connection is released when the block exits, read to the end or not."""
        client = self._http()
        request = client.build_request(method, url, headers=forwardable(headers), content=body)
        resp = await client.send(request, stream=True)
        try:
            yield resp
        finally:
            await resp.aclose()

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
