"""Compression end to end: a real `mitmdump -s addons/headroom.py` and `headroom proxy` in front
of the fake provider. Big tool outputs (a log, JSON API output, search results) reach the
provider compressed, with markers naming headroom_retrieve and a hash whose original is in the
proxy's CCR store, and the retrieve tool declared; small outputs and protected tools reach it byte
for byte (bypass: test_e2e_bypass.py); flow metadata, /stats and /metrics count what was done."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import workloads as W  # noqa: E402
from headroom_core.ccr import CCRStore  # noqa: E402
from headroom_core.compression.markers import find_markers  # noqa: E402
from headroom_core.storage.disk import DiskStorage  # noqa: E402
from headroom_core.tenancy import tenant_of  # noqa: E402
from proxy_runner import headroom_proxy, mitmdump  # noqa: E402

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-compression"
A, C, R = "/v1/messages", "/v1/chat/completions", "/v1/responses"
HEADERS = {A: {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
           C: {"authorization": f"Bearer {KEY}"}, R: {"authorization": f"Bearer {KEY}"}}
LOG = W.incident_log(seed=41, lines=900)
ISSUES = W.issue_json(seed=42, n=60)
SEARCH = W.code_search(seed=43, hits=100)
FILE = W.file_read(seed=44, lines=300)  # tool "Read": protected


@pytest.fixture(scope="module", params=["mitmdump", "headroom"])
def proxy(request, provider, tmp_path_factory):
    """Each proxy with a known data directory (to read its CCR store)."""
    tmp = tmp_path_factory.mktemp(request.param)
    data = tmp / "data"
    if request.param == "mitmdump":
        proc = mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir",
                        sets={"headroom_data_dir": str(data)})
    else:
        proc = headroom_proxy(provider.url, tmp / "proxy.log", data)
    proc.data_dir = data
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy):
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=60) as c:
        yield c


def conversation(path: str, outputs: list[tuple[str, dict, str]], question: str = "why?") -> dict:
    """A request whose history holds one tool call and its result per (tool, args, text)."""
    if path == A:
        messages: list[dict] = [{"role": "user", "content": question}]
        for k, (tool, args, text) in enumerate(outputs):
            messages.append({"role": "assistant", "content": [
                {"type": "tool_use", "id": f"toolu_{k}", "name": tool, "input": args}]})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": text}]})
        tools = sorted({t for t, _, _ in outputs})
        return {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": messages,
                "tools": [{"name": t, "input_schema": {"type": "object"}} for t in tools]}
    if path == C:
        messages = [{"role": "user", "content": question}]
        for k, (tool, args, text) in enumerate(outputs):
            messages.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": f"call_{k}", "type": "function",
                 "function": {"name": tool, "arguments": json.dumps(args)}}]})
            messages.append({"role": "tool", "tool_call_id": f"call_{k}", "content": text})
        tools = sorted({t for t, _, _ in outputs})
        return {"model": "gpt-4o", "messages": messages,
                "tools": [{"type": "function", "function": {"name": t, "parameters": {}}}
                          for t in tools]}
    items: list[dict] = [{"role": "user", "content": question}]
    for k, (tool, args, text) in enumerate(outputs):
        items.append({"type": "function_call", "call_id": f"call_{k}", "name": tool,
                      "arguments": json.dumps(args)})
        items.append({"type": "function_call_output", "call_id": f"call_{k}", "output": text})
    tools = sorted({t for t, _, _ in outputs})
    return {"model": "gpt-4o", "input": items, "store": False,
            "tools": [{"type": "function", "name": t, "parameters": {}} for t in tools]}


def outputs_of(path: str, doc: dict) -> list[str]:
    """The tool outputs of a request as the provider received it, in order."""
    if path == A:
        return [b["content"] for m in doc["messages"] if isinstance(m["content"], list)
                for b in m["content"] if b.get("type") == "tool_result"]
    if path == C:
        return [m["content"] for m in doc["messages"] if m["role"] == "tool"]
    return [i["output"] for i in doc["input"] if i.get("type") == "function_call_output"]


def tool_names(path: str, doc: dict) -> list[str]:
    if path == C:
        return [t["function"]["name"] for t in doc.get("tools", [])]
    return [t["name"] for t in doc.get("tools", [])]


def send(client: httpx.Client, path: str, doc: dict, **headers: str) -> bytes:
    body = json.dumps(doc).encode()
    resp = client.post(path, content=body, headers={"content-type": "application/json",
                                                    **HEADERS[path], **headers})
    assert resp.status_code == 200, resp.text
    return body


def ccr_store(proxy) -> CCRStore:
    return CCRStore(DiskStorage(proxy.data_dir / "ccr"))


def check_compressed(proxy, path: str, received: bytes, sent: bytes, workloads: list) -> None:
    doc = json.loads(received)
    assert len(received) < len(sent) / 3
    assert "headroom_retrieve" in tool_names(path, doc)  # the retrieval addon declared it
    store = ccr_store(proxy)
    try:
        for text, w in zip(outputs_of(path, doc), workloads):
            hashes = find_markers(text)
            assert hashes, text[:400]
            assert "headroom_retrieve(hash=" in text
            originals = [store.get(tenant_of({"x-api-key": KEY}), h) for h in hashes]
            assert [o.text for o in originals if o is not None] == [w.text]
            for needle in w.needles:  # inline, or in the original a marker names
                assert needle in text or needle in w.text
    finally:
        store.storage.close()


@pytest.mark.parametrize("path", [A, C, R])
def test_big_outputs_reach_the_provider_compressed(client, provider, proxy, path):
    works = [LOG, ISSUES, SEARCH]
    doc = conversation(path, [(w.tool_name, w.tool_args, w.text) for w in works],
                       question="Why is settlement failing for the order the log names?")
    sent = send(client, path, doc)
    check_compressed(proxy, path, provider.requests[-1].body, sent, works)
    issues = outputs_of(path, json.loads(provider.requests[-1].body))[1]
    json.loads(issues)  # JSON in, JSON out


@pytest.mark.parametrize("path", [A, C, R])
def test_small_and_protected_outputs_arrive_byte_identical(client, provider, path):
    small = "\n".join(f"line {i}: ok" for i in range(20))
    listing = "\n".join(f"-rw-r--r--  1 dev dev {1000 + i:6d} Mar 14 09:00 file_{i:04d}.py"
                        for i in range(900))
    status = "On branch main\nChanges not staged for commit:\n" + "\n".join(
        f"\tmodified:   src/module_{i:04d}/handler.py" for i in range(900))
    doc = conversation(path, [
        ("Bash", {"command": "pytest -q tests/test_small.py"}, small),
        (FILE.tool_name, FILE.tool_args, FILE.text),
        ("Bash", {"command": "cat src/payments/settle.py"}, FILE.text),
        ("Bash", {"command": "ls -la src"}, listing),
        ("Bash", {"command": "git status"}, status)])
    sent = send(client, path, doc)
    assert provider.requests[-1].body == sent


def test_stats_and_metrics_count_the_transforms(client, provider):
    doc = conversation(A, [(LOG.tool_name, LOG.tool_args, LOG.text),
                           (ISSUES.tool_name, ISSUES.tool_args, ISSUES.text)])
    send(client, A, doc)
    stats = client.get("/stats").json()
    assert stats["tokens"]["saved"] > 0
    assert stats["compression"]["log"]["count"] >= 1
    assert stats["compression"]["json"]["count"] >= 1
    for kind in ("log", "json"):
        entry = stats["compression"][kind]
        assert entry["tokens_after"] < entry["tokens_before"]
    metrics = client.get("/metrics").text
    saved = [float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
             if line.startswith("headroom_tokens_saved_total{")]
    assert saved and sum(saved) > 0
    kinds = [line for line in metrics.splitlines()
             if line.startswith("headroom_transforms_total{") and 'kind="log"' in line]
    assert kinds and float(kinds[0].rsplit(" ", 1)[1]) >= 1


def test_flow_metadata_records_the_transforms(provider, tmp_path):
    """Flows saved with -w keep headroom's summary: which transforms ran, tokens before/after."""
    from mitmproxy import io

    flows = tmp_path / "flows.mitm"
    proc = mitmdump(provider.url, tmp_path / "proxy.log", tmp_path / "confdir",
                    sets={"save_stream_file": str(flows)})
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=60) as c:
            send(c, A, conversation(A, [(LOG.tool_name, LOG.tool_args, LOG.text)]))
            send(c, A, conversation(A, [("Bash", {"command": "echo hi"}, "hi")]))
    finally:
        proc.stop()
    with open(flows, "rb") as f:
        saved = list(io.FlowReader(f).stream())
    assert len(saved) == 2
    big, small = (f.metadata["headroom"] for f in saved)
    assert big["changed"] is True and big["tokens_after"] < big["tokens_before"]
    assert [t["kind"] for t in big["transforms"]] == ["log"]
    assert big["transforms"][0]["tokens_before"] > big["transforms"][0]["tokens_after"]
    assert "log" in (saved[0].comment or "")  # mitmweb's comment names the transform
    assert small["changed"] is False and "transforms" not in small
