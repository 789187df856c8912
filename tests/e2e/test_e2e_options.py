"""Options reach the running proxy with flag > env > default, through both ways of starting it."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from fake_provider import FakeProvider
from proxy_runner import ADDON, BIN, clean_env, free_port, headroom_proxy, mitmdump

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def provider():
    with FakeProvider() as p:
        yield p


def health(url: str) -> dict:
    with httpx.Client(trust_env=False, timeout=30) as c:
        return c.get(url + "/health").json()


@pytest.mark.parametrize("env,args,optimize", [
    ({}, [], True),
    ({"HEADROOM_OPTIMIZE": "false"}, [], False),
    ({}, ["--no-optimize"], False),
])
def test_headroom_proxy_precedence(provider, tmp_path, env, args, optimize):
    proc = headroom_proxy(provider.url, tmp_path / "log", tmp_path / "data",
                          args + ["--protect-tool", "Read", "--protect-tool", "Bash"],
                          env=clean_env(**env))
    try:
        assert health(proc.url)["optimize"] is optimize
    finally:
        proc.stop()


@pytest.mark.parametrize("env,sets,optimize", [
    ({"HEADROOM_OPTIMIZE": "false"}, {}, False),
    ({"HEADROOM_OPTIMIZE": "false"}, {"headroom_optimize": "true"}, True),
])
def test_mitmdump_precedence(provider, tmp_path, env, sets, optimize):
    proc = mitmdump(provider.url, tmp_path / "log", tmp_path / "confdir", sets=sets,
                    env=clean_env(**env))
    try:
        assert health(proc.url)["optimize"] is optimize
    finally:
        proc.stop()


def test_mitmdump_rejects_a_bad_option(provider, tmp_path):
    """mitmproxy logs the OptionsError and its startup error check ends the process."""
    argv = [str(BIN / "mitmdump"), "-s", str(ADDON), "--mode", f"reverse:{provider.url}@{free_port()}",
            "--listen-host", "127.0.0.1", "--set", f"confdir={tmp_path}",
            "--set", "headroom_min_savings=7"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=clean_env())
    assert out.returncode != 0
    assert "--min-savings: must lie in 0..1" in out.stdout + out.stderr


def test_unreachable_upstream_is_a_502_and_is_counted(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    proc = headroom_proxy(dead, tmp_path / "log", tmp_path / "data", env=clean_env())
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            resp = c.post("/v1/messages", content=b'{"model":"claude-x"}')
            assert resp.status_code == 502
            stats = c.get("/stats").json()
        assert stats["requests"]["by_status"] == {"error": 1}
    finally:
        proc.stop()


def test_client_leaving_mid_stream_is_accounted_and_the_proxy_carries_on(provider, tmp_path):
    from fake_provider import Reply, anthropic_events

    proc = headroom_proxy(provider.url, tmp_path / "log", tmp_path / "data", env=clean_env())
    try:
        provider.script(Reply(events=anthropic_events(input_tokens=41), event_delay=0.5))
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            with c.stream("POST", "/v1/messages", content=b'{"stream":true}') as resp:
                next(resp.iter_raw())  # message_start arrived; leave
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            deadline = time.monotonic() + 20
            while True:  # the proxy notices the client left when it next writes to it
                stats = c.get("/stats").json()
                if stats["requests"]["total"] or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert stats["requests"]["total"] == 1
            assert stats["usage"]["uncached_input"] == 41  # read before the client left
            assert c.post("/v1/messages", content=b"{}").status_code == 200
    finally:
        proc.stop()


def test_saved_flows_carry_the_headroom_summary(provider, tmp_path):
    from mitmproxy import io as mio

    flows_file = tmp_path / "flows"
    proc = mitmdump(provider.url, tmp_path / "log", tmp_path / "confdir", env=clean_env(),
                    sets={"save_stream_file": str(flows_file)})
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            assert c.post("/v1/messages", content=b'{"model":"claude-x"}',
                          headers={"x-api-key": "sk-secret"}).status_code == 200
    finally:
        proc.stop()
    with open(flows_file, "rb") as f:
        flows = list(mio.FlowReader(f).stream())
    meta = flows[0].metadata["headroom"]
    assert meta["provider"] == "anthropic" and meta["tenant"].startswith("t_")
    assert b"sk-secret" not in flows_file.read_bytes()  # DESIGN.md rule 9
    assert flows[0].request.headers["x-api-key"] == f"[redacted by headroom: {meta['tenant']}]"
    assert provider.requests[-1].header("x-api-key") == "sk-secret"  # the provider got the key
