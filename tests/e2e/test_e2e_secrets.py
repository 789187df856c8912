"""No API key leaves headroom: not in the request log, /metrics, /stats, /health, the proxy's own
output or a saved flow file (`-w`); the tenant hash stands in for it. And the request log has
one line per request, streamed or not, for both providers, with the issue's fields."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from fake_provider import Reply, openai_chat_events
from headroom_core.tenancy import tenant_of
from proxy_runner import clean_env, headroom_proxy

pytestmark = pytest.mark.e2e

# Keys of the documented shapes (the request log's redaction pattern also knows them).
ANTHROPIC_KEY = "sk-ant-api03-Zq7vW2xKp9LmN4bR8tY1uE6oI3aS5dF0gH2jK4lZ6xC8vB1nM3qW5eR7tY9uI0o-AbCdEfAA"
OPENAI_KEY = "sk-proj-Xy9Wv8Ut7Sr6Qp5On4Ml3Kj2Ih1Gf0EdCbA9z8y7x6w5v4u3t2s1r0q"
SECRETS = (ANTHROPIC_KEY, OPENAI_KEY, ANTHROPIC_KEY[-24:], OPENAI_KEY[-24:])
A_HEADERS = {"x-api-key": ANTHROPIC_KEY, "anthropic-version": "2023-06-01"}
O_HEADERS = {"authorization": f"Bearer {OPENAI_KEY}"}
A_TENANT = tenant_of({"x-api-key": ANTHROPIC_KEY})
O_TENANT = tenant_of({"authorization": f"Bearer {OPENAI_KEY}"})

LOG_FIELDS = {"time", "request_id", "tenant", "provider", "endpoint", "model", "stream", "status",
              "tokens_before", "tokens_after", "tokens_saved", "usage", "cost_usd", "cache",
              "transforms", "retrieval_rounds", "retrieved_hashes", "retrieved_bytes",
              "overhead_ms", "latency_ms", "refused", "error"}


@dataclass
class Run:
    """Everything one proxy run left behind."""

    sent: list[tuple[str, bool, int]]  # (path, streamed, status) per provider-bound request
    log_lines: list[dict]
    log_text: str
    pages: dict[str, str]  # /metrics, /stats, /health as served
    output: str  # the proxy's own stdout and stderr
    flows_file: Path


def anthropic(stream: bool = False, text: str = "hello") -> dict:
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {**doc, "stream": True} if stream else doc


def chat(stream: bool = False, text: str = "hello") -> dict:
    doc = {"model": "gpt-4o", "messages": [{"role": "user", "content": text}]}
    return {**doc, "stream": True, "stream_options": {"include_usage": True}} if stream else doc


@pytest.fixture(scope="module")
def run(provider, tmp_path_factory) -> Iterator[Run]:
    tmp = tmp_path_factory.mktemp("secrets")
    log_file, flows_file = tmp / "requests.jsonl", tmp / "flows"
    proc = headroom_proxy(provider.url, tmp / "proxy.log", tmp / "data",
                          ["--log-file", str(log_file), "--rpm", "4", "--budget", "100",
                           "--", "-w", str(flows_file)],
                          env=clean_env(HEADROOM_CACHE="true"))
    sent: list[tuple[str, bool, int]] = []
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            def post(path: str, doc: dict, headers: dict) -> httpx.Response:
                resp = c.post(path, json=doc, headers=headers)
                sent.append((path, bool(doc.get("stream")), resp.status_code))
                c.get("/stats")  # accounted (and cached) before the next request
                return resp

            assert post("/v1/messages", anthropic(), A_HEADERS).status_code == 200
            assert post("/v1/messages", anthropic(True, "streamed"), A_HEADERS).status_code == 200
            assert post("/v1/chat/completions", chat(), O_HEADERS).status_code == 200
            assert post("/v1/chat/completions", chat(True, "streamed"), O_HEADERS).status_code == 200
            assert post("/v1/responses", {"model": "gpt-4o", "input": "hi"}, O_HEADERS).status_code == 200
            hit = post("/v1/messages", anthropic(), A_HEADERS)
            assert hit.headers["x-headroom-cache"] == "hit"
            # An upstream error passes through, and is logged.
            provider.script(Reply(status=500, body=b'{"error":{"message":"upstream broke","type":"server_error"}}'))
            assert post("/v1/chat/completions", chat(stream=False) | {"n": 2}, O_HEADERS).status_code == 500
            # The anthropic key's fifth request in the minute is refused (--rpm 4).
            assert post("/v1/messages", anthropic(text="again"), A_HEADERS).status_code == 200
            assert post("/v1/messages", anthropic(text="more"), A_HEADERS).status_code == 429
            pages = {p: c.get(p).text for p in ("/metrics", "/stats", "/health")}
    finally:
        proc.stop()
    text = log_file.read_text()
    yield Run(sent, [json.loads(line) for line in text.splitlines()], text, pages,
              proc.log.read_text(errors="replace"), flows_file)


def test_no_key_in_log_metrics_stats_health_or_output(run):
    places = {"request log": run.log_text, "proxy output": run.output, **run.pages}
    for where, text in places.items():
        for secret in SECRETS:
            assert secret not in text, f"a key appears in {where}"
    assert A_TENANT in run.log_text and O_TENANT in run.log_text
    assert A_TENANT in run.pages["/stats"]  # the budget lists tenants by hash
    assert not re.search(r"\bt_[0-9a-f]{24}\b", run.pages["/metrics"])  # never by tenant


def test_no_key_in_saved_flows(run):
    from mitmproxy import io as mio

    raw = run.flows_file.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in raw
    with open(run.flows_file, "rb") as f:
        every = list(mio.FlowReader(f).stream())
    for flow in every:  # /stats and the others too
        assert not any(secret in repr(flow.get_state()) for secret in SECRETS)
    flows = [f for f in every if "tenant" in f.metadata.get("headroom", {})]
    assert len(flows) == len(run.sent)  # every request, the cache hit and the refusal included
    for flow in flows:
        state = repr(flow.get_state())
        assert not any(secret in state for secret in SECRETS)
        tenant = flow.metadata["headroom"]["tenant"]
        assert tenant in (A_TENANT, O_TENANT)
        names = {"x-api-key", "authorization"} & {k.lower() for k in flow.request.headers}
        assert names and all(flow.request.headers[n] == f"[redacted by headroom: {tenant}]"
                             for n in names)
    assert {f.metadata["headroom"].get("cache") for f in flows} >= {"hit", "miss"}
    assert [f.response.status_code for f in flows] == [status for _, _, status in run.sent]


def test_one_log_line_per_request_with_the_issues_fields(run):
    lines = run.log_lines
    assert len(lines) == len(run.sent) == 9
    for line, (path, stream, status) in zip(lines, run.sent):
        assert set(line) == LOG_FIELDS  # no message content without --log-messages
        assert line["status"] == status and line["stream"] is stream
        assert line["provider"] == ("anthropic" if path == "/v1/messages" else "openai")
        assert line["tenant"] == (A_TENANT if path == "/v1/messages" else O_TENANT)
        assert line["model"] in ("claude-sonnet-4-5", "gpt-4o")
        assert line["time"].endswith("Z") and line["latency_ms"] >= line["overhead_ms"] >= 0
        assert line["tokens_before"] > 0 and line["tokens_after"] <= line["tokens_before"]
    assert len({line["request_id"] for line in lines}) == len(lines)
    streamed = [l for l in lines if l["stream"]]
    assert len(streamed) == 2
    for line in streamed:  # usage read from the event stream, and priced
        assert line["usage"]["input_tokens"] > 0 and line["usage"]["output_tokens"] > 0
        assert line["cost_usd"] > 0
    hit, error, refused = lines[5], lines[6], lines[8]
    assert hit["cache"] == "hit" and hit["usage"]["input_tokens"] == 0 and hit["cost_usd"] == 0
    assert error["status"] == 500 and error["cache"] == "miss"
    assert refused["refused"] == "rate_limit" and refused["cost_usd"] == 0
    assert [l["cache"] for l in lines[:5]] == ["miss"] * 5
    assert refused["cache"] == "off" and "4 requests per minute" in refused["error"]


def test_log_messages_writes_content_with_keys_redacted(provider, tmp_path):
    log_file = tmp_path / "requests.jsonl"
    proc = headroom_proxy(provider.url, tmp_path / "proxy.log", tmp_path / "data",
                          ["--log-file", str(log_file), "--log-messages"])
    try:
        text = f"my key is {OPENAI_KEY}, keep it safe"
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            assert c.post("/v1/messages", json=anthropic(text=text), headers=A_HEADERS).status_code == 200
            provider.script(Reply(events=openai_chat_events()))
            assert c.post("/v1/chat/completions", json=chat(stream=True), headers=O_HEADERS).status_code == 200
            c.get("/stats")
    finally:
        proc.stop()
    content = log_file.read_text()
    lines = [json.loads(line) for line in content.splitlines()]
    assert len(lines) == 2 and all("messages" in line for line in lines)
    assert "keep it safe" in content and "[redacted]" in content
    assert not any(secret in content for secret in SECRETS)
