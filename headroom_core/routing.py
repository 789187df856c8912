"""Where a request goes: a local endpoint, the Anthropic upstream or the OpenAI upstream.

Pure and cheap (called once per request): no I/O, upstream URLs parsed once and cached.

The table, in order:
  1. `/health`, `/stats`, `/metrics` (any query string) are answered by headroom, never forwarded.
  2. A request carrying `anthropic-version` or `x-api-key` goes to Anthropic, whatever its path.
  3. `/v1/messages` and `/v1/messages/...` go to Anthropic.
  4. Every other `/v1/...` path (chat/completions, responses, embeddings, models, ...) goes to OpenAI.
  5. Anything else is answered 404 in OpenAI's error envelope (the shape most clients of an
     unknown path parse), so nothing unexpected is sent to a provider with the user's key.

The upstream URL's path prefix is kept (`http://host:9000/openai` + `/v1/chat/completions` ->
`/openai/v1/chat/completions`); a prefix that already ends in `/v1` (a common way to write an
OpenAI base URL) is not doubled.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

from .settings import Settings
from .wire.common import Endpoint

LOCAL_PATHS = {"/health": "health", "/stats": "stats", "/metrics": "metrics"}
ANTHROPIC_HEADERS = ("anthropic-version", "x-api-key")


class RouteKind(str, enum.Enum):
    LOCAL = "local"  # answered by headroom (health, stats, metrics)
    UPSTREAM = "upstream"  # forwarded to a provider
    NOT_FOUND = "not_found"  # answered 404, never forwarded


@dataclass(frozen=True)
class Upstream:
    """A provider base URL, split once."""

    scheme: str
    host: str
    port: int
    prefix: str  # path prefix without trailing slash ("" for none)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@functools.lru_cache(maxsize=32)
def parse_upstream(url: str) -> Upstream:
    """Split an upstream base URL; ValueError if it is not http(s)://host[:port][/prefix]."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL, got {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return Upstream(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


@dataclass(frozen=True)
class Route:
    """The decision for one request. For UPSTREAM routes scheme/host/port/path address the flow."""

    kind: RouteKind
    provider: str  # "anthropic" | "openai" (upstream), "local" otherwise
    endpoint: Endpoint | None  # the wire format of the body; None for local and 404 routes
    local: str = ""  # "health" | "stats" | "metrics" for LOCAL routes
    scheme: str = ""
    host: str = ""
    port: int = 0
    path: str = ""  # upstream path including the query string
    host_header: str = ""

    @property
    def is_upstream(self) -> bool:
        return self.kind is RouteKind.UPSTREAM


def _endpoint(provider: str, method: str, path: str) -> Endpoint:
    """The body format, by path: formats we parse need POST to their exact path."""
    if method == "POST":
        if path == "/v1/messages":
            return Endpoint.ANTHROPIC_MESSAGES
        if path == "/v1/messages/count_tokens":
            return Endpoint.ANTHROPIC_COUNT_TOKENS
        if path == "/v1/chat/completions":
            return Endpoint.OPENAI_CHAT
        if path == "/v1/responses":
            return Endpoint.OPENAI_RESPONSES
    return Endpoint.ANTHROPIC_OTHER if provider == "anthropic" else Endpoint.OPENAI_OTHER


def _join(prefix: str, path: str) -> str:
    if prefix.endswith("/v1") and (path == "/v1" or path.startswith(("/v1/", "/v1?"))):
        prefix = prefix[: -len("/v1")]
    return prefix + path


def route(method: str, path: str, headers: Mapping[str, str], settings: Settings) -> Route:
    """Route one request. `path` is the request target as received (path plus query);
    `headers` is case-insensitive (mitmproxy's Headers) or has lower-case names."""
    anthropic = any(headers.get(h) for h in ANTHROPIC_HEADERS)
    return _route(method, path, anthropic, settings.anthropic_api_url, settings.openai_api_url)


@functools.lru_cache(maxsize=4096)  # clients use a handful of paths; Routes are immutable
def _route(method: str, path: str, anthropic_headers: bool, anthropic_url: str,
           openai_url: str) -> Route:
    bare = path.split("?", 1)[0]
    if len(bare) > 1:
        bare = bare.rstrip("/")
    local = LOCAL_PATHS.get(bare)
    if local:
        return Route(RouteKind.LOCAL, "local", None, local=local)
    if anthropic_headers:
        provider = "anthropic"
    elif bare == "/v1/messages" or bare.startswith("/v1/messages/"):
        provider = "anthropic"
    elif bare == "/v1" or bare.startswith("/v1/"):
        provider = "openai"
    else:
        return Route(RouteKind.NOT_FOUND, "local", None)
    up = parse_upstream(anthropic_url if provider == "anthropic" else openai_url)
    return Route(RouteKind.UPSTREAM, provider, _endpoint(provider, method.upper(), bare),
                 scheme=up.scheme, host=up.host, port=up.port, path=_join(up.prefix, path),
                 host_header=up.host_header)


PROVIDER_HOSTS = {"api.anthropic.com": "anthropic", "api.openai.com": "openai"}


def route_intercepted(method: str, path: str, headers: Mapping[str, str], scheme: str, host: str,
                      port: int) -> Route:
    """A forward-mode flow to an intercepted host keeps its destination; only its provider and
    endpoint are decided (by host, then by the same header and path rules as `route`)."""
    bare = path.split("?", 1)[0].rstrip("/") or "/"
    provider = PROVIDER_HOSTS.get(host.lower().rstrip("."))
    if provider is None:
        anthropic = (any(headers.get(h) for h in ANTHROPIC_HEADERS) or bare == "/v1/messages"
                     or bare.startswith("/v1/messages/"))
        provider = "anthropic" if anthropic else "openai"
    up = Upstream(scheme, host, port, "")
    return Route(RouteKind.UPSTREAM, provider, _endpoint(provider, method.upper(), bare),
                 scheme=scheme, host=host, port=port, path=path, host_header=up.host_header)
