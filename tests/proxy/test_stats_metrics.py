"""Aggregates for /health and /stats, and the Prometheus families."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from headroom_core import metrics as metrics_mod, stats as stats_mod
from headroom_core.metrics import Metrics
from headroom_core.records import RequestRecord, TransformSummary
from headroom_core.stats import Stats
from headroom_core.usage import Usage


def rec(**kw) -> RequestRecord:
    base = dict(request_id="r", tenant="t_x", provider="anthropic", endpoint="anthropic.messages",
                model="claude-x", stream=False, status=200, started_at=0.0)
    base.update(kw)
    return RequestRecord(**base)


def test_savings_percent_is_over_forwarded_requests():
    s = Stats()
    s.record(rec(tokens_before=1000, tokens_after=548))
    s.record(rec(tokens_before=500, tokens_after=500))
    s.record(rec(tokens_before=999, tokens_after=999, refused="budget", status=429))
    health = s.health_stats()
    assert (health["total_requests"], health["tokens_saved"], health["savings_percent"]) == \
        (3, 452, 30.1)
    snap = s.snapshot()
    assert snap["requests"]["forwarded"] == 2 and snap["refused"] == {"budget": 1}
    assert snap["requests"]["errors"] == 1


def test_usage_transforms_latency_and_sections():
    s = Stats()
    s.record(rec(usage=Usage(10, 2, 30, 4), latency_ms=100.0, overhead_ms=0.5,
                 transforms=(TransformSummary("json", 80, 20, 2),), retrieval_rounds=1,
                 retrieved_bytes=123))
    s.record(rec(latency_ms=300.0, stream=True, cache="hit"))
    s.add_section("ccr", lambda: {"entries": 3})
    s.add_section("broken", lambda: 1 / 0)
    snap = s.snapshot()
    assert snap["usage"] == {"uncached_input": 10, "cache_read": 30, "cache_write": 4, "output": 2}
    assert snap["compression"] == {"json": {"count": 2, "tokens_before": 80, "tokens_after": 20}}
    assert snap["latency_ms"]["p50"] in (100.0, 300.0) and snap["latency_ms"]["max"] == 300.0
    assert snap["retrieval"] == {"rounds": 1, "bytes": 123}
    assert snap["ccr"] == {"entries": 3} and "error" in snap["broken"]
    assert snap["cache"] == {"off": 1, "hit": 1} and snap["requests"]["streamed"] == 1


def test_model_names_are_capped(monkeypatch):
    monkeypatch.setattr(stats_mod, "MAX_MODELS", 2)
    monkeypatch.setattr(metrics_mod, "MAX_MODELS", 2)
    s, m = Stats(), Metrics()
    for name in ("a", "b", "c", "d", "a"):
        s.record(rec(model=name))
        m.observe(rec(model=name))
    assert s.snapshot()["requests"]["by_model"] == {"a": 2, "b": 1, "other": 2}
    models = {sample.labels["model"] for f in text_string_to_metric_families(m.render().decode())
              for sample in f.samples if sample.name == "headroom_requests_total"}
    assert models == {"a", "b", "other"}


def test_metric_values():
    m = Metrics()
    m.observe(rec(tokens_before=100, tokens_after=60, cost_usd=0.25, latency_ms=1500.0,
                  usage=Usage(5, 6, 7, 8)))
    m.observe(rec(status=0))
    m.optimization_error("anthropic", "claude-x", "timeout")
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(m.render().decode()) for s in f.samples}
    ok = (("model", "claude-x"), ("provider", "anthropic"), ("status", "200"))
    assert found[("headroom_requests_total", ok)] == 1
    assert found[("headroom_tokens_saved_total", ok)] == 40
    assert found[("headroom_cost_usd_total", ok)] == 0.25
    assert found[("headroom_request_duration_seconds_sum", ok)] == 1.5
    assert found[("headroom_input_tokens_total", tuple(sorted(ok + (("kind", "cache_write"),))))] == 8
    assert found[("headroom_output_tokens_total", ok)] == 6
    err = (("model", "claude-x"), ("provider", "anthropic"), ("status", "error"))
    assert found[("headroom_requests_total", err)] == 1
    assert found[("headroom_optimization_errors_total", (("model", "claude-x"),
                  ("provider", "anthropic"), ("reason", "timeout")))] == 1


def test_repeated_observations_reuse_one_child_per_label_set():
    m = Metrics()
    for status in (200, 200, 429, 200):
        m.observe(rec(status=status, latency_ms=10.0, usage=Usage(3, 1)))
    m.optimization_error("openai", "", "exception")
    m.optimization_error("openai", "", "exception")
    found = {(s.name, tuple(sorted(s.labels.items()))): s.value
             for f in text_string_to_metric_families(m.render().decode()) for s in f.samples}
    ok = (("model", "claude-x"), ("provider", "anthropic"), ("status", "200"))
    limited = (("model", "claude-x"), ("provider", "anthropic"), ("status", "429"))
    assert found[("headroom_requests_total", ok)] == 3
    assert found[("headroom_requests_total", limited)] == 1
    assert found[("headroom_request_duration_seconds_count", ok)] == 3
    assert found[("headroom_input_tokens_total", tuple(sorted(ok + (("kind", "uncached"),))))] == 9
    assert found[("headroom_optimization_errors_total", (("model", "unknown"),
                  ("provider", "openai"), ("reason", "exception")))] == 2
