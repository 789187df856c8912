"""Retrieval against an HTTPS provider (a local CA that mitmproxy is told to trust): the relay's
own calls must apply the same trust, in reverse mode and in forward (regular proxy) mode."""

from __future__ import annotations

import json
import ssl
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

import tls_fixtures as tls  # noqa: E402  (tests/ is on sys.path)
from fake_provider import FakeProvider, Reply  # noqa: E402
from headroom_core import certs  # noqa: E402
from headroom_core.ccr import CCRStore, marker_hash  # noqa: E402
from headroom_core.compression.markers import make_marker  # noqa: E402
from headroom_core.storage.disk import DiskStorage  # noqa: E402
from headroom_core.tenancy import tenant_of  # noqa: E402
from proxy_runner import (ProxyProcess, clean_env, free_port, headroom_proxy,  # noqa: E402
                          wait_for_addons)
from retrieval_clients import read_anthropic  # noqa: E402
from retrieval_streams import TOOL, a_retrieve, anthropic_events  # noqa: E402

pytestmark = pytest.mark.e2e

KEY = "sk-tls-owner"
ORIGINAL = "\n".join(f"row {i}" for i in range(300)) + "\nNEEDLE-77 found\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tls-retrieval")
    ca = tls.make_ca(tmp, "retrieval upstream CA")
    context = tls.server_context(ca, tmp, ["localhost"])
    store = CCRStore(DiskStorage(tmp / "data" / "ccr"))
    digest = marker_hash(store.put(tenant_of({"x-api-key": KEY}), ORIGINAL, kind="log"))
    store.storage.close()
    with FakeProvider(host="localhost", ssl_context=context) as provider:
        yield tmp, ca, provider, digest


def request(digest: str) -> bytes:
    marker = make_marker("300 of 301 lines omitted", digest)
    return json.dumps({"model": "claude-test", "max_tokens": 50, "stream": True, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "the log:\n" + marker}]}]}).encode()


def script(provider: FakeProvider, digest: str) -> None:
    provider.reset()
    provider.script(Reply(events=anthropic_events([a_retrieve("toolu_1", digest)], "tool_use")),
                    Reply(events=anthropic_events([{"type": "text", "text": "NEEDLE-77."}],
                                                  "end_turn", "msg_2")))


def stream_retrieving_turn(proc: ProxyProcess, client: httpx.Client, url: str, digest: str) -> bytes:
    """Post the request whose answer needs a retrieval round; the bytes the client got."""
    with client.stream("POST", url, content=request(digest), headers={"x-api-key": KEY}) as resp:
        assert resp.status_code == 200, proc.output()
        return resp.read()


def check(provider: FakeProvider, raw: bytes) -> None:
    msg = read_anthropic(raw)
    assert [b["text"] for b in msg["content"]] == ["NEEDLE-77."]
    assert len(provider.requests) == 2
    assert provider.requests[1].header("host") == f"localhost:{provider.port}"
    assert "NEEDLE-77 found" in provider.requests[1].body.decode()
    assert TOOL in provider.requests[0].body.decode()


def test_reverse_mode_to_an_https_provider(world):
    tmp, ca, provider, digest = world
    script(provider, digest)
    proc = headroom_proxy(provider.url, tmp / "reverse.log", tmp / "data",
                          ["--no-cache", "--", "--set", f"ssl_verify_upstream_trusted_ca={ca.cert_path}"],
                          env=clean_env())
    try:
        wait_for_addons(proc.url)
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            raw = stream_retrieving_turn(proc, c, "/v1/messages", digest)
    finally:
        proc.stop()
    check(provider, raw)


def test_forward_mode_intercepted_provider_host(world):
    tmp, ca, provider, digest = world
    script(provider, digest)
    forward_port = free_port()
    proc = headroom_proxy(provider.url, tmp / "forward.log", tmp / "data",
                          ["--no-cache", "--forward", "--forward-port", str(forward_port),
                           "--intercept-host", "localhost",
                           "--", "--set", f"ssl_verify_upstream_trusted_ca={ca.cert_path}"],
                          env=clean_env())
    try:
        wait_for_addons(f"http://127.0.0.1:{proc.port}")
        bundle = certs.combined_bundle(certs.ca_info(tmp / "data" / "certs").path)
        with httpx.Client(proxy=f"http://127.0.0.1:{forward_port}",
                          verify=ssl.create_default_context(cafile=str(bundle)),
                          trust_env=False, timeout=30) as c:
            raw = stream_retrieving_turn(proc, c, f"{provider.url}/v1/messages", digest)
    finally:
        proc.stop()
    check(provider, raw)
