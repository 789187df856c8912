"""Prometheus metrics for `/metrics`, in a registry of our own (never the global default one).

Labels are provider, model and status, never anything derived from a key. Model names come from
clients, so their number is capped (past MAX_MODELS distinct names they are reported as "other")
to keep the exposition bounded.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .records import RequestRecord

MAX_MODELS = 100
LABELS = ("provider", "model", "status")
# LLM calls take from tens of milliseconds (cache hits, count_tokens) to minutes (long streams).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    120.0, 300.0, float("inf"))
RATIO_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0, float("inf"))


class Metrics:
    """The metric families headroom exports, and `observe(record)` to update them."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("headroom_requests_total", "Proxied requests.", LABELS, registry=r)
        self.tokens_saved = Counter("headroom_tokens_saved_total",
                                    "Input tokens removed by optimisation (tiktoken count).",
                                    LABELS, registry=r)
        self.cost = Counter("headroom_cost_usd_total", "Provider cost in USD, from usage and pricing.",
                            LABELS, registry=r)
        self.duration = Histogram("headroom_request_duration_seconds",
                                  "Request latency seen by headroom, request start to response end.",
                                  LABELS, buckets=DURATION_BUCKETS, registry=r)
        self.input_tokens = Counter("headroom_input_tokens_total",
                                    "Provider-reported input tokens by kind "
                                    "(uncached, cache_read, cache_write).",
                                    LABELS + ("kind",), registry=r)
        self.output_tokens = Counter("headroom_output_tokens_total",
                                     "Provider-reported output tokens.", LABELS, registry=r)
        self.optimization_errors = Counter("headroom_optimization_errors_total",
                                           "Requests forwarded unoptimised because optimisation "
                                           "failed or ran out of time (fail open).",
                                           ("provider", "model", "reason"), registry=r)
        self.retrieval_rounds = Counter("headroom_retrieval_rounds_total",
                                        "headroom_retrieve rounds answered (provider calls made "
                                        "to continue a turn).", ("provider", "model"), registry=r)
        self.retrieved_bytes = Counter("headroom_retrieved_bytes_total",
                                       "Bytes of originals returned to the model by headroom_retrieve.",
                                       ("provider", "model"), registry=r)
        # Per transform kind (a compressor, "fit", "llmlingua"): how often it ran, what it saved.
        self.transforms = Counter("headroom_transforms_total",
                                  "Transforms applied to forwarded requests, by kind.",
                                  ("provider", "kind"), registry=r)
        self.transform_tokens_saved = Counter("headroom_transform_tokens_saved_total",
                                              "Input tokens removed, by transform kind "
                                              "(tiktoken count).", ("provider", "kind"),
                                              registry=r)
        self.cache_hits = Counter("headroom_cache_hits_total",
                                  "Requests answered from the response cache.", LABELS, registry=r)
        self.cache_misses = Counter("headroom_cache_misses_total",
                                    "Requests looked up in the response cache and forwarded.",
                                    LABELS, registry=r)
        self.rate_limit_refusals = Counter("headroom_rate_limit_refusals_total",
                                           "Requests refused by --rpm / --tpm.", LABELS, registry=r)
        self.budget_refusals = Counter("headroom_budget_refusals_total",
                                       "Requests refused by --budget (spent, or its store "
                                       "unavailable).", LABELS, registry=r)
        self.compression_ratio = Histogram("headroom_compression_ratio",
                                           "tokens_after / tokens_before of each forwarded "
                                           "request (1: unchanged).", LABELS,
                                           buckets=RATIO_BUCKETS, registry=r)
        self._budget_source: Callable[[], dict[str, Any]] | None = None
        r.register(_BudgetCollector(self))
        self._models: set[str] = set()
        self._lock = threading.Lock()
        # (metric, label values) -> the labelled child. prometheus_client's labels() validates
        # and locks on every call (~4 us); a request updates five or more children.
        self._children: dict[tuple[Any, tuple[str, ...]], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        child = self._children.get((metric, labels))
        if child is None:  # a race only looks it up twice: labels() returns the same child
            child = self._children[(metric, labels)] = metric.labels(*labels)
        return child

    def watch_budget(self, source: Callable[[], dict[str, Any]] | None) -> None:
        """Export the budget's figures, read from `source` (SpendAdmission.budget_section)
        at each scrape; None stops exporting them."""
        self._budget_source = source

    def _model(self, model: str) -> str:
        model = model or "unknown"
        if model in self._models:
            return model
        with self._lock:
            if len(self._models) < MAX_MODELS:
                self._models.add(model)
                return model
        return "other"

    def observe(self, rec: RequestRecord) -> None:
        labels = (rec.provider, self._model(rec.model), str(rec.status) if rec.status else "error")
        child = self._child
        child(self.requests, *labels).inc()
        if rec.tokens_saved:
            child(self.tokens_saved, *labels).inc(rec.tokens_saved)
        if rec.cost_usd:
            child(self.cost, *labels).inc(rec.cost_usd)
        child(self.duration, *labels).observe(rec.latency_ms / 1000.0)
        u = rec.usage
        for kind, value in (("uncached", u.input_tokens), ("cache_read", u.cache_read_tokens),
                            ("cache_write", u.cache_write_tokens)):
            if value:
                child(self.input_tokens, *labels, kind).inc(value)
        if u.output_tokens:
            child(self.output_tokens, *labels).inc(u.output_tokens)
        for t in rec.transforms:
            child(self.transforms, rec.provider, t.kind).inc(t.count)
            if t.tokens_before > t.tokens_after:
                child(self.transform_tokens_saved, rec.provider, t.kind).inc(
                    t.tokens_before - t.tokens_after)
        if rec.cache == "hit":
            child(self.cache_hits, *labels).inc()
        elif rec.cache == "miss":
            child(self.cache_misses, *labels).inc()
        if rec.refused == "rate_limit":
            child(self.rate_limit_refusals, *labels).inc()
        elif rec.refused == "budget":
            child(self.budget_refusals, *labels).inc()
        if rec.tokens_before and not rec.refused and rec.cache != "hit":
            child(self.compression_ratio, *labels).observe(rec.tokens_after / rec.tokens_before)
        if rec.retrieval_rounds:
            child(self.retrieval_rounds, *labels[:2]).inc(rec.retrieval_rounds)
        if rec.retrieved_bytes:
            child(self.retrieved_bytes, *labels[:2]).inc(rec.retrieved_bytes)

    def optimization_error(self, provider: str, model: str, reason: str) -> None:
        """reason: "exception" or "timeout"."""
        self._child(self.optimization_errors, provider, self._model(model), reason).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _BudgetCollector:
    """headroom_budget_{limit,spend,remaining}_usd, read at scrape time. Scope "global" is the
    global budget; "tenant_min" the least remaining among recently seen tenants (no tenant is
    named: a metric label must never identify a key)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list:
        return []  # read lazily: the budget may be configured after the registry exists

    def collect(self) -> Iterator[GaugeMetricFamily]:
        source = self.metrics._budget_source
        doc = source() if source is not None else None
        if not doc or "limit_usd" not in doc:
            return
        limit = GaugeMetricFamily("headroom_budget_limit_usd", "Budget per period in USD.",
                                  labels=("period",))
        limit.add_metric((doc["period"],), doc["limit_usd"])
        yield limit
        spend = GaugeMetricFamily("headroom_budget_spend_usd",
                                  "Spend in the current budget period.", labels=("scope",))
        remaining = GaugeMetricFamily("headroom_budget_remaining_usd",
                                      "Budget left in the current period.", labels=("scope",))
        rows = []
        glob = doc.get("global") or {}
        if glob.get("remaining_usd") is not None:
            rows.append(("global", glob))
        tenants = [t for t in (doc.get("tenants") or {}).values() if t.get("remaining_usd") is not None]
        if tenants:
            rows.append(("tenant_min", min(tenants, key=lambda t: t["remaining_usd"])))
        for scope, figures in rows:
            spend.add_metric((scope,), figures["spend_usd"])
            remaining.add_metric((scope,), figures["remaining_usd"])
        yield spend
        yield remaining
