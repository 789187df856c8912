"""The routing table: local endpoints, Anthropic, OpenAI, 404; upstream prefixes kept."""

from __future__ import annotations

import pytest

from headroom_core.routing import RouteKind, parse_upstream, route, route_intercepted
from headroom_core.settings import Settings
from headroom_core.wire.common import Endpoint

S = Settings()


@pytest.mark.parametrize("method,path,headers,kind,provider,endpoint", [
    ("GET", "/health", {}, RouteKind.LOCAL, "local", None),
    ("GET", "/stats?x=1", {}, RouteKind.LOCAL, "local", None),
    ("GET", "/metrics", {"x-api-key": "k"}, RouteKind.LOCAL, "local", None),
    ("POST", "/v1/messages", {}, RouteKind.UPSTREAM, "anthropic", Endpoint.ANTHROPIC_MESSAGES),
    ("POST", "/v1/messages?beta=true", {}, RouteKind.UPSTREAM, "anthropic",
     Endpoint.ANTHROPIC_MESSAGES),
    ("POST", "/v1/messages/count_tokens", {}, RouteKind.UPSTREAM, "anthropic",
     Endpoint.ANTHROPIC_COUNT_TOKENS),
    ("GET", "/v1/messages/batches", {}, RouteKind.UPSTREAM, "anthropic", Endpoint.ANTHROPIC_OTHER),
    ("POST", "/v1/chat/completions", {}, RouteKind.UPSTREAM, "openai", Endpoint.OPENAI_CHAT),
    ("POST", "/v1/responses", {}, RouteKind.UPSTREAM, "openai", Endpoint.OPENAI_RESPONSES),
    ("GET", "/v1/responses/resp_1", {}, RouteKind.UPSTREAM, "openai", Endpoint.OPENAI_OTHER),
    ("POST", "/v1/embeddings", {}, RouteKind.UPSTREAM, "openai", Endpoint.OPENAI_OTHER),
    ("GET", "/v1/models", {}, RouteKind.UPSTREAM, "openai", Endpoint.OPENAI_OTHER),
    ("POST", "/v1/audio/speech", {}, RouteKind.UPSTREAM, "openai", Endpoint.OPENAI_OTHER),
    # Anthropic headers win whatever the path.
    ("GET", "/v1/models", {"anthropic-version": "2023-06-01"}, RouteKind.UPSTREAM, "anthropic",
     Endpoint.ANTHROPIC_OTHER),
    ("POST", "/v1/chat/completions", {"x-api-key": "sk-ant"}, RouteKind.UPSTREAM, "anthropic",
     Endpoint.OPENAI_CHAT),
    ("POST", "/anything", {"anthropic-version": "2023-06-01"}, RouteKind.UPSTREAM, "anthropic",
     Endpoint.ANTHROPIC_OTHER),
    ("GET", "/", {}, RouteKind.NOT_FOUND, "local", None),
    ("GET", "/favicon.ico", {}, RouteKind.NOT_FOUND, "local", None),
    ("POST", "/v2/messages", {}, RouteKind.NOT_FOUND, "local", None),
])
def test_table(method, path, headers, kind, provider, endpoint):
    r = route(method, path, headers, S)
    assert (r.kind, r.provider, r.endpoint) == (kind, provider, endpoint)


@pytest.mark.parametrize("name", ["health", "stats", "metrics"])
def test_local_names(name):
    assert route("GET", f"/{name}", {}, S).local == name


def test_default_upstreams():
    a = route("POST", "/v1/messages?beta=true", {}, S)
    assert (a.scheme, a.host, a.port, a.path, a.host_header) == (
        "https", "api.anthropic.com", 443, "/v1/messages?beta=true", "api.anthropic.com")
    o = route("POST", "/v1/chat/completions", {}, S)
    assert (o.scheme, o.host, o.port, o.host_header) == ("https", "api.openai.com", 443,
                                                         "api.openai.com")


@pytest.mark.parametrize("url,path,expected_path,host_header", [
    ("http://host:9000/openai", "/v1/chat/completions", "/openai/v1/chat/completions", "host:9000"),
    ("http://host:9000/openai/", "/v1/models?x=1", "/openai/v1/models?x=1", "host:9000"),
    ("https://gw.example/v1", "/v1/chat/completions", "/v1/chat/completions", "gw.example"),
    ("https://gw.example:8443/a/v1", "/v1/responses", "/a/v1/responses", "gw.example:8443"),
    ("http://[::1]:9000", "/v1/embeddings", "/v1/embeddings", "[::1]:9000"),
    ("http://127.0.0.1:80", "/v1/models", "/v1/models", "127.0.0.1"),
])
def test_prefix_kept(url, path, expected_path, host_header):
    r = route("POST", path, {}, Settings(openai_api_url=url))
    assert r.path == expected_path
    assert r.host_header == host_header


def test_anthropic_prefix():
    r = route("POST", "/v1/messages", {}, Settings(anthropic_api_url="http://127.0.0.1:7000/proxy/anthropic"))
    assert (r.scheme, r.host, r.port, r.path) == ("http", "127.0.0.1", 7000,
                                                  "/proxy/anthropic/v1/messages")


def test_parse_upstream_rejects_non_http():
    with pytest.raises(ValueError):
        parse_upstream("ftp://example.com")


def test_only_post_to_exact_paths_is_a_parsed_format():
    assert route("GET", "/v1/messages", {}, S).endpoint is Endpoint.ANTHROPIC_OTHER
    assert route("POST", "/v1/chat/completions/abc", {}, S).endpoint is Endpoint.OPENAI_OTHER


@pytest.mark.parametrize("host,headers,path,provider", [
    ("api.anthropic.com", {}, "/v1/models", "anthropic"),
    ("api.openai.com", {}, "/v1/messages", "openai"),
    ("llm.internal", {"x-api-key": "k"}, "/v1/chat/completions", "anthropic"),
    ("llm.internal", {}, "/v1/messages", "anthropic"),
    ("llm.internal", {}, "/v1/chat/completions", "openai"),
])
def test_intercepted_flows_keep_their_destination(host, headers, path, provider):
    r = route_intercepted("POST", path, headers, "https", host, 443)
    assert r.kind is RouteKind.UPSTREAM and r.provider == provider
    assert (r.host, r.port, r.path, r.host_header) == (host, 443, path, host)
