"""Spend guard: response cache, rate limits, budgets, pricing and the request log.

Modules (imported on their own; this package imports nothing, so each stays cheap to load):

- `pricing`        — `Pricing.load(path, default_price)`, `.cost(model, usage)`, `.estimate(...)`
- `response_cache` — `cache_key(tenant, endpoint, doc)`, `is_cacheable(endpoint, status, body)`,
                     `ResponseCache(storage, ttl, max_entries)`, `CachedResponse`
- `semantic_cache` — `SemanticCache(cache, threshold)` for single-turn near-duplicates (opt-in)
- `stream_assembly`— `StreamAssembler(endpoint)` (SSE events → final body), `replay_sse(endpoint, body)`
- `ratelimit`      — `RateLimiter(storage, rpm, tpm)`: `admit(...) -> Admission`, `reconcile(...)`
- `budget`         — `BudgetGuard(storage, limit, period, scope, pricing)`: `reserve`, `settle`,
                     `release`, `snapshot`
- `request_log`    — `RequestLog(path, log_messages).write(record)`

When the shared store fails (`StorageError`), each part degrades in one documented way:
the response cache fails open (a miss; nothing stored), the rate limiter fails open (admitted,
reason "storage_unavailable"; the provider still enforces its own limits), and the budget fails
closed (refused, reason "budget_unavailable"; money is what it protects). The rate limiter and
the budget take `fail_open=` to choose otherwise.
"""
