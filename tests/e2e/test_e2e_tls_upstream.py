"""Real providers are HTTPS: the reverse proxy to a TLS upstream (a local one, trusted through
mitmproxy's ssl_verify_upstream_trusted_ca) keeps bytes, Host and streaming intact."""

from __future__ import annotations

import time

import httpx
import pytest

import tls_fixtures as tls
from fake_provider import FakeProvider, Reply, anthropic_events
from proxy_runner import clean_env, headroom_proxy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls")
    ca = tls.make_ca(tmp, "e2e upstream CA")
    context = tls.server_context(ca, tmp, ["localhost"])
    with FakeProvider(host="localhost", ssl_context=context) as provider:
        proc = headroom_proxy(provider.url, tmp / "log", tmp / "data",
                              ["--", "--set", f"ssl_verify_upstream_trusted_ca={ca.cert_path}"],
                              env=clean_env())
        yield provider, proc
        proc.stop()


def test_https_upstream_keeps_bytes_and_host(tls_setup):
    provider, proc = tls_setup
    body = b'{"model": "claude-sonnet-4-5", "messages": [{"role":"user","content":"hi"}]}'
    with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
        resp = c.post("/v1/messages", content=body, headers={"x-api-key": "k"})
    assert resp.status_code == 200, proc.output()
    got = provider.requests[-1]
    assert got.body == body and got.header("host") == f"localhost:{provider.port}"


def test_https_upstream_streams(tls_setup):
    provider, proc = tls_setup
    events = anthropic_events()
    provider.script(Reply(events=events, event_delay=0.3))
    arrivals = []
    with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
        with c.stream("POST", "/v1/messages", content=b'{"stream":true}') as resp:
            for chunk in resp.iter_raw():
                arrivals.append((time.monotonic(), chunk))
    assert b"".join(c for _, c in arrivals) == b"".join(events)
    assert arrivals[-1][0] - arrivals[0][0] > 0.6 * 0.3 * (len(events) - 1)
