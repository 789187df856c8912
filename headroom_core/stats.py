"""In-process aggregates of finished requests, for `/health` and `/stats`.

Definitions (also served in `/stats` under "definitions"):
- a *proxied request* is one addressed to a provider that headroom handled: forwarded, answered
  from the response cache, or refused (rate limit, budget). headroom's own endpoints and 404s for
  unknown paths are not requests.
- `tokens_before` / `tokens_after`: our tokenizer's count (tiktoken) of the request as the client
  sent it and as it was forwarded, over forwarded requests.
- `savings_percent` = 100 x (tokens_before - tokens_after) / tokens_before, over forwarded
  requests since start, rounded to 0.1.

Thread-safe: records may arrive from the accounting worker as well as the event loop.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from typing import Any, Callable

from .records import RequestRecord

MAX_MODELS = 200  # distinct model names kept apart; past it they count as "other"
LATENCY_WINDOW = 10_000  # latencies kept for the percentiles (the most recent ones)

DEFINITIONS = {
    "proxied_request": "a request addressed to a provider that headroom handled: forwarded, "
                       "answered from the response cache, or refused; headroom's own endpoints "
                       "are not counted",
    "tokens_before": "tiktoken count of each forwarded request as the client sent it",
    "tokens_after": "tiktoken count of each forwarded request as headroom sent it",
    "tokens_saved": "tokens_before - tokens_after",
    "savings_percent": "100 * tokens_saved / tokens_before over forwarded requests since start, "
                       "rounded to 0.1",
    "usage": "the provider's own token figures: uncached input, cache read, cache write, output",
    "latency_ms": "from the client's request to the end of the response, as seen by headroom",
    "overhead_ms": "headroom's own processing time on the request path",
    "budget": "spend_usd: cost charged in the current UTC calendar period, from the provider's "
              "usage and the pricing file; remaining_usd = limit_usd - spend_usd; reserved_usd: "
              "estimates held by requests in flight; resets_at: when the next period starts; "
              "tenants: the most recently seen tenants, by hash",
    "toin": "tool output patterns (tool name + output-structure signature) with the most "
            "activity: compressions counted once per output, retrievals (query_retrievals: by "
            "query), top_fields the model asked for, importance = retrievals / (compressions + "
            "1) capped at 1; per tenant by hash, or one global scope with --toin-global",
    "response_cache": "hits: answered from the cache without the provider; misses: looked up "
                      "and forwarded; stored: final answers stored; not_cacheable: answers not "
                      "stored (tool use, errors, streams cut short)",
}


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return round(sorted_values[index], 3)


def _latency_summary(values: deque[float]) -> dict[str, float]:
    data = sorted(values)
    mean = round(sum(data) / len(data), 3) if data else 0.0
    return {"count": len(data), "p50": _percentile(data, 0.50), "p90": _percentile(data, 0.90),
            "p99": _percentile(data, 0.99), "max": round(data[-1], 3) if data else 0.0,
            "mean": mean}


class Stats:
    """Running totals; `record()` one RequestRecord per finished request."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._started = clock()
        self._lock = threading.Lock()
        self._sections: dict[str, Callable[[], dict[str, Any]]] = {}
        self._health_sections: dict[str, Callable[[], dict[str, Any]]] = {}
        self.total = 0
        self.forwarded = 0
        self.tokens_before = 0
        self.tokens_after = 0
        self.cost_usd = 0.0
        self.usage = Counter()
        self.by_provider: Counter[str] = Counter()
        self.by_model: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.streamed = 0
        self.errors = 0
        self.refused: Counter[str] = Counter()
        self.cache: Counter[str] = Counter()
        self.transforms: dict[str, Counter[str]] = {}
        self.retrieval: Counter[str] = Counter()
        self._latency: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._overhead: deque[float] = deque(maxlen=LATENCY_WINDOW)

    @property
    def uptime_s(self) -> float:
        return round(self._clock() - self._started, 3)

    def add_section(self, name: str, snapshot: Callable[[], dict[str, Any]],
                    health: Callable[[], dict[str, Any]] | None = None) -> None:
        """A later feature (cache, rate limits, budget, CCR, fitting) adds its part of /stats,
        and optionally a shorter one to the `stats` object of /health."""
        self._sections[name] = snapshot
        if health is not None:
            self._health_sections[name] = health
        else:
            self._health_sections.pop(name, None)

    @staticmethod
    def _run_sections(sections: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, section in list(sections.items()):
            try:
                out[name] = section()
            except Exception as e:  # one broken section must not take /stats down
                out[name] = {"error": f"{type(e).__name__}: {e}"}
        return out

    def _model_key(self, model: str) -> str:
        model = model or "unknown"
        if model in self.by_model or len(self.by_model) < MAX_MODELS:
            return model
        return "other"

    def record(self, rec: RequestRecord) -> None:
        with self._lock:
            self.total += 1
            self.by_provider[rec.provider] += 1
            self.by_model[self._model_key(rec.model)] += 1
            self.by_status[str(rec.status) if rec.status else "error"] += 1
            self.by_endpoint[rec.endpoint] += 1
            self.streamed += rec.stream
            self.errors += rec.status == 0 or rec.status >= 400
            if rec.refused:
                self.refused[rec.refused] += 1
            self.cache[rec.cache] += 1
            if not rec.refused and rec.cache != "hit":
                self.forwarded += 1
                self.tokens_before += rec.tokens_before
                self.tokens_after += rec.tokens_after
            u = rec.usage
            self.usage["uncached_input"] += u.input_tokens
            self.usage["cache_read"] += u.cache_read_tokens
            self.usage["cache_write"] += u.cache_write_tokens
            self.usage["output"] += u.output_tokens
            self.cost_usd += rec.cost_usd
            for t in rec.transforms:
                c = self.transforms.setdefault(t.kind, Counter())
                c["count"] += t.count
                c["tokens_before"] += t.tokens_before
                c["tokens_after"] += t.tokens_after
            if rec.retrieval_rounds:
                self.retrieval["rounds"] += rec.retrieval_rounds
                self.retrieval["bytes"] += rec.retrieved_bytes
            self._latency.append(rec.latency_ms)
            self._overhead.append(rec.overhead_ms)

    @property
    def tokens_saved(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)

    @property
    def savings_percent(self) -> float:
        if not self.tokens_before:
            return 0.0
        return round(100.0 * self.tokens_saved / self.tokens_before, 1)

    def health_stats(self) -> dict[str, Any]:
        """The `stats` object of `/health` (shape fixed by what users' health checks parse)."""
        with self._lock:
            doc: dict[str, Any] = {"total_requests": self.total, "tokens_saved": self.tokens_saved,
                                   "savings_percent": self.savings_percent,
                                   "cache": dict(self.cache), "refused": dict(self.refused)}
        doc.update(self._run_sections(self._health_sections))
        return doc

    def snapshot(self) -> dict[str, Any]:
        """The `/stats` document."""
        with self._lock:
            doc: dict[str, Any] = {
                "uptime_s": self.uptime_s,
                "requests": {
                    "total": self.total,
                    "forwarded": self.forwarded,
                    "streamed": self.streamed,
                    "errors": self.errors,
                    "by_provider": dict(self.by_provider),
                    "by_model": dict(self.by_model),
                    "by_status": dict(self.by_status),
                    "by_endpoint": dict(self.by_endpoint),
                },
                "tokens": {
                    "before": self.tokens_before,
                    "after": self.tokens_after,
                    "saved": self.tokens_saved,
                    "savings_percent": self.savings_percent,
                },
                "usage": {k: self.usage[k] for k in
                          ("uncached_input", "cache_read", "cache_write", "output")},
                "cost_usd": round(self.cost_usd, 6),
                "latency_ms": _latency_summary(self._latency),
                "overhead_ms": _latency_summary(self._overhead),
                "compression": {k: dict(v) for k, v in sorted(self.transforms.items())},
                "cache": dict(self.cache),
                "refused": dict(self.refused),
                "retrieval": {"rounds": self.retrieval["rounds"],
                              "bytes": self.retrieval["bytes"]},
            }
        doc.update(self._run_sections(self._sections))
        doc["definitions"] = DEFINITIONS
        return doc
