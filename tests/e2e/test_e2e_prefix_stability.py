"""Prefix stability end to end: a 20-turn growing agent conversation (the client resends its
whole history each turn, plus a new tool call and a new large tool result) through real proxy
processes. What reaches the provider on turn n must start with the exact bytes it received on
turn n-1 (less the closing `]}` of the messages array, the body's last key): the provider's
cached prefix stays valid. Also across a SIGKILL and restart on the same data directory, when
turns alternate between two instances with separate data directories (mitmdump and headroom
proxy), and for streamed requests.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from agent_session import PATHS, turn_bodies  # noqa: E402
from headroom_core.compression.markers import find_markers  # noqa: E402
from proxy_runner import ProxyProcess, headroom_proxy, mitmdump  # noqa: E402

pytestmark = pytest.mark.e2e

TURNS = 20
DIALECTS = ("anthropic", "chat", "responses")
KEY_HEADERS = {"anthropic": {"x-api-key": "sk-prefix", "anthropic-version": "2023-06-01"},
               "chat": {"authorization": "Bearer sk-prefix"},
               "responses": {"authorization": "Bearer sk-prefix"}}


def start(kind: str, provider, tmp: Path, data: Path) -> ProxyProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    if kind == "mitmdump":
        return mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir",
                        sets={"headroom_data_dir": str(data)})
    return headroom_proxy(provider.url, tmp / "proxy.log", data)


def send_turn(proxy: ProxyProcess, provider, dialect: str, body: bytes) -> bytes:
    """One turn through `proxy`; the bytes the provider received."""
    before = len(provider.requests)
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=60) as c:
        resp = c.post(PATHS[dialect], content=body,
                      headers={"content-type": "application/json", **KEY_HEADERS[dialect]})
    assert resp.status_code == 200, resp.text
    assert len(provider.requests) == before + 1
    return provider.requests[-1].body


def first_difference(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    return next((i for i in range(n) if a[i] != b[i]), n)


def assert_prefix_stable(upstream: list[bytes], sent: list[bytes]) -> None:
    assert len(upstream) == TURNS
    for n in range(1, TURNS):
        prev, cur = upstream[n - 1], upstream[n]
        assert prev.endswith(b"]}"), prev[-80:]  # the messages (input) array closes the body
        prefix = prev[:-2]
        if not cur.startswith(prefix):
            at = first_difference(prefix, cur)
            pytest.fail(f"turn {n + 1} changed the bytes of turn {n} at offset {at} of "
                        f"{len(prefix)}:\n turn {n}: {prefix[max(0, at - 150):at + 150]!r}\n"
                        f" turn {n + 1}: {cur[max(0, at - 150):at + 150]!r}")
    # It is the compressed conversation that stayed stable, retrieve tool and markers included.
    last = json.loads(upstream[-1])
    names = [t.get("name") or t.get("function", {}).get("name") for t in last["tools"]]
    assert "headroom_retrieve" in names
    assert len(find_markers(upstream[-1].decode())) >= TURNS // 2
    assert len(upstream[-1]) < len(sent[-1]) / 2


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("dialect", DIALECTS)
def test_prefix_stable_over_20_turns(provider, tmp_path, dialect, stream):
    sent = turn_bodies(dialect, TURNS, stream=stream)
    proxy = start("mitmdump", provider, tmp_path / "p", tmp_path / "data")
    try:
        upstream = [send_turn(proxy, provider, dialect, body) for body in sent]
    finally:
        proxy.stop()
    assert_prefix_stable(upstream, sent)


@pytest.mark.parametrize("dialect,stream", [("anthropic", False), ("chat", False),
                                            ("responses", False), ("anthropic", True)])
def test_prefix_stable_across_sigkill_and_restart(provider, tmp_path, dialect, stream):
    sent = turn_bodies(dialect, TURNS, stream=stream)
    data = tmp_path / "data"  # the same data directory before and after the kill
    upstream = []
    proxy = start("headroom", provider, tmp_path / "first", data)
    try:
        upstream += [send_turn(proxy, provider, dialect, body) for body in sent[:TURNS // 2]]
        os.kill(proxy.proc.pid, signal.SIGKILL)
        proxy.proc.wait(timeout=15)
    finally:
        proxy.stop()
    proxy = start("headroom", provider, tmp_path / "second", data)
    try:
        upstream += [send_turn(proxy, provider, dialect, body) for body in sent[TURNS // 2:]]
    finally:
        proxy.stop()
    assert_prefix_stable(upstream, sent)


@pytest.mark.parametrize("dialect,stream", [("anthropic", False), ("chat", False),
                                            ("responses", False), ("chat", True)])
def test_prefix_stable_alternating_two_instances(provider, tmp_path, dialect, stream):
    """No shared store: each instance renders every earlier result itself, identically."""
    sent = turn_bodies(dialect, TURNS, stream=stream)
    proxies = [start("mitmdump", provider, tmp_path / "a", tmp_path / "data-a"),
               start("headroom", provider, tmp_path / "b", tmp_path / "data-b")]
    try:
        upstream = [send_turn(proxies[n % 2], provider, dialect, body)
                    for n, body in enumerate(sent)]
    finally:
        for p in proxies:
            p.stop()
    assert_prefix_stable(upstream, sent)
