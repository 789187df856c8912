"""End to end: /health, /stats, /metrics answered locally and counting what went through."""

from __future__ import annotations

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from fake_provider import Reply, anthropic_events, openai_chat_events

pytestmark = pytest.mark.e2e


def stats(client) -> dict:
    resp = client.get("/stats")
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    return resp.json()


def samples(client) -> dict[tuple[str, tuple], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(found: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in found.items()
               if n == name and all(dict(ls).get(k) == v2 for k, v2 in labels.items()))


def test_health_has_the_documented_shape(client, provider):
    resp = client.get("/health")
    assert resp.status_code == 200
    doc = resp.json()
    assert doc["status"] == "healthy" and doc["optimize"] is True
    assert {"total_requests", "tokens_saved", "savings_percent"} <= set(doc["stats"])
    assert isinstance(doc["stats"]["total_requests"], int)
    assert isinstance(doc["stats"]["savings_percent"], (int, float))
    assert {"version", "uptime_s", "features"} <= set(doc)
    assert not provider.requests  # answered locally


def test_local_endpoints_and_unknown_paths_never_reach_the_provider(client, provider):
    assert client.post("/health").status_code == 405
    resp = client.get("/nope")
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "invalid_request_error"  # OpenAI's envelope
    assert client.head("/metrics").status_code == 200
    assert not provider.requests


def test_stats_count_requests_tokens_and_usage(client, provider):
    before = stats(client)
    client.post("/v1/messages", content=json.dumps({
        "model": "claude-sonnet-4-5", "max_tokens": 5,
        "messages": [{"role": "user", "content": "count these words please"}]}).encode())
    provider.script(Reply(events=anthropic_events(input_tokens=100, output_tokens=9,
                                                  cache_read=50, cache_write=20)))
    with client.stream("POST", "/v1/messages", content=json.dumps({
            "model": "claude-sonnet-4-5", "stream": True,
            "messages": [{"role": "user", "content": "hello"}]}).encode()) as resp:
        resp.read()
    client.post("/v1/chat/completions", content=json.dumps({
        "model": "gpt-4o", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}]}).encode())
    after = stats(client)
    b, a = before, after
    assert a["requests"]["total"] - b["requests"]["total"] == 3
    assert a["requests"]["by_provider"]["anthropic"] - b["requests"]["by_provider"].get("anthropic", 0) == 2
    assert a["requests"]["by_model"]["gpt-4o"] - b["requests"]["by_model"].get("gpt-4o", 0) == 1
    assert a["requests"]["streamed"] - b["requests"]["streamed"] == 2
    assert a["tokens"]["before"] > b["tokens"]["before"]  # counted with tiktoken
    assert a["tokens"]["after"] - b["tokens"]["after"] == a["tokens"]["before"] - b["tokens"]["before"]
    # provider usage: 25/7 (JSON) + 100/50/20/9 (stream) + 30 cached 0 / 6 (chat stream)
    du = {k: a["usage"][k] - b["usage"][k] for k in a["usage"]}
    assert du == {"uncached_input": 25 + 100 + 30, "cache_read": 50, "cache_write": 20,
                  "output": 7 + 9 + 6}
    assert "savings_percent" in a["definitions"]
    assert a["latency_ms"]["count"] >= 3 and a["latency_ms"]["p99"] >= a["latency_ms"]["p50"]


def test_gzip_stream_usage_is_counted(client, provider):
    b = stats(client)
    provider.script(Reply(events=anthropic_events(input_tokens=77, output_tokens=13), gzip=True))
    with client.stream("POST", "/v1/messages", content=b'{"stream":true,"model":"m-gz"}') as r:
        r.read()
    a = stats(client)
    assert a["usage"]["uncached_input"] - b["usage"]["uncached_input"] == 77
    assert a["usage"]["output"] - b["usage"]["output"] == 13


def test_upstream_errors_are_counted_by_status(client, provider):
    b = stats(client)
    provider.script(Reply(status=429, headers=[("retry-after", "1")], body=b'{"type":"error"}'))
    client.post("/v1/messages", content=b'{"model":"claude-x"}')
    a = stats(client)
    assert a["requests"]["by_status"]["429"] - b["requests"]["by_status"].get("429", 0) == 1
    assert a["requests"]["errors"] - b["requests"]["errors"] == 1


def test_metrics_are_valid_prometheus_text(client, provider):
    client.post("/v1/chat/completions", content=json.dumps({
        "model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}).encode())
    found = samples(client)
    assert total(found, "headroom_requests_total", provider="openai", model="gpt-4o-mini",
                 status="200") >= 1
    assert total(found, "headroom_request_duration_seconds_count", model="gpt-4o-mini") >= 1
    assert total(found, "headroom_request_duration_seconds_sum", model="gpt-4o-mini") > 0
    assert total(found, "headroom_request_duration_seconds_bucket", model="gpt-4o-mini",
                 le="+Inf") >= 1
    assert total(found, "headroom_input_tokens_total", model="gpt-4o-mini", kind="uncached") == 30
    assert total(found, "headroom_output_tokens_total", model="gpt-4o-mini") == 6
    names = {n for n, _ in found}
    for family in ("headroom_requests_total", "headroom_request_duration_seconds_bucket"):
        assert family in names
    text = client.get("/metrics").text
    for declared in ("headroom_tokens_saved_total", "headroom_cost_usd_total",
                     "headroom_optimization_errors_total"):
        assert (f"# TYPE {declared} counter" in text
                or f"# TYPE {declared.removesuffix('_total')} counter" in text)


def test_no_key_ever_appears_in_stats_or_metrics(client, provider):
    key = "sk-ant-secret-key-123456"
    client.post("/v1/messages", content=b'{"model":"claude-k"}', headers={"x-api-key": key})
    assert key not in client.get("/stats").text
    assert key not in client.get("/metrics").text
