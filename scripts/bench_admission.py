#!/usr/bin/env python3
"""Per-request cost of the spend guard on the request path: admission + response-cache lookup.

One "request" = RateLimiter.admit (request and token buckets) + BudgetGuard.reserve + one
ResponseCache.lookup of a precomputed key (half hit, half miss); the budget settle that follows
a real request is done untimed so reservations do not pile up. Backends: diskcache in a temp
directory and, when `redis-server` is installed, a local Redis started for the run. Targets
(issue 6): p50 <= 1 ms on diskcache, <= 2 ms on local Redis. Also shown: computing the cache key
itself for a small and a large request body (that cost grows with the body).

The second table measures the same work as the proxy does it: the pipeline's hooks built by
`services.attach` from Settings (`SpendAdmission.admit` + `CacheHook.lookup`, with the
store's FailFast guard and, on Redis, the hop to the spend guard's threads), and the whole
`HeadroomCore.prepare` (tenant hash, ticket, both hooks; optimisation off), for a ~2 KB
Anthropic request body from 50 tenants, half of them cache hits.

Usage: .venv/bin/python scripts/bench_admission.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from headroom_core import services  # noqa: E402
from headroom_core.pipeline import HeadroomCore, RequestInfo, ResponseInfo, Ticket  # noqa: E402
from headroom_core.records import RequestRecord  # noqa: E402
from headroom_core.routing import route  # noqa: E402
from headroom_core.settings import Settings  # noqa: E402
from headroom_core.spend.budget import BudgetGuard, Reservation  # noqa: E402
from headroom_core.spend.pricing import Pricing  # noqa: E402
from headroom_core.spend.ratelimit import RateLimiter  # noqa: E402
from headroom_core.spend.response_cache import CachedResponse, ResponseCache, cache_key  # noqa: E402
from headroom_core.storage.base import Storage  # noqa: E402
from headroom_core.storage.disk import DiskStorage  # noqa: E402
from headroom_core.storage.memory import MemoryStorage  # noqa: E402

TENANTS = [f"t_{i:024x}" for i in range(50)]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def run_backend(storage: Storage, n: int) -> list[float]:
    pricing = Pricing.load(None, (3.0, 15.0))
    limiter = RateLimiter(storage, rpm=10**9, tpm=10**12)
    budget = BudgetGuard(storage, 1e12, "monthly", "both", pricing)
    cache = ResponseCache(storage, ttl=3600, max_entries=10000)
    keys = [cache_key(t, "anthropic.messages", {"model": "m", "messages": [{"role": "user", "content": t}]})
            for t in TENANTS]
    for k in keys[::2]:
        cache.store(k, CachedResponse(200, (("content-type", "application/json"),), b'{"x":1}' * 50,
                                      time.time()))
    timings = []
    for i in range(n + 100):
        tenant, key = TENANTS[i % len(TENANTS)], keys[i % len(keys)]
        started = time.perf_counter()
        limiter.admit(tenant, 12_000, time.time())
        r = budget.reserve(tenant, budget.estimate("claude-sonnet-4-5", 12_000, 4096))
        cache.lookup(key)
        elapsed = time.perf_counter() - started
        if isinstance(r, Reservation):
            budget.settle(r, 0.01)
        if i >= 100:  # warm-up excluded
            timings.append(elapsed * 1000)
    return timings


def _request(i: int, settings: Settings) -> RequestInfo:
    tenant = i % len(TENANTS)
    headers = {"x-api-key": f"sk-ant-bench-{tenant:04d}", "content-type": "application/json"}
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "You are terse. " * 20,
           "messages": [{"role": "user", "content": f"question {i % 100} " + "hello " * 300}]}
    return RequestInfo(f"flow-{i}", "POST", "/v1/messages", headers, json.dumps(doc).encode(),
                       route("POST", "/v1/messages", headers, settings), time.time())


async def _pipeline(settings: Settings, n: int) -> tuple[list[float], list[float], float]:
    """(admit + lookup, whole prepare) in ms per request after a warm-up, and the hit ratio."""
    core = HeadroomCore(settings)
    state = services.attach(core, settings)
    admission, cache = core.admission, core.response_cache
    answer = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
              "content": [{"type": "text", "text": "ok " * 50}], "stop_reason": "end_turn",
              "usage": {"input_tokens": 500, "output_tokens": 50}}
    for i in range(0, 100, 2):  # half the distinct questions are in the cache
        info = _request(i, settings)
        ticket = Ticket(info, services_tenant(info))
        if await cache.lookup(ticket) is None:
            cache.store(ticket, ResponseInfo(200, time.time(), {"content-type": "application/json"},
                                             json.dumps(answer).encode()))
    hooks, whole = [], []
    cache.counts.clear()
    for i in range(n + 200):
        info = _request(i + 1000, settings)
        ticket = Ticket(info, services_tenant(info))
        t0 = time.perf_counter()
        refusal = await admission.admit(ticket)
        hit = await cache.lookup(ticket)
        t1 = time.perf_counter()
        assert refusal is None
        _finish(admission, cache, ticket, hit is not None)
        t2 = time.perf_counter()
        decision = await core.prepare(_request(i + 2000, settings))
        t3 = time.perf_counter()
        _finish(admission, cache, decision.ticket, decision.response is not None)
        if i >= 200:  # warm-up excluded
            hooks.append((t1 - t0) * 1000)
            whole.append((t3 - t2) * 1000)
    ratio = cache.counts["hits"] / max(1, cache.counts["hits"] + cache.counts["misses"])
    state.close()
    core.close()
    return hooks, whole, ratio


def services_tenant(info: RequestInfo) -> str:
    from headroom_core.pipeline import tenant_from

    return tenant_from(info.headers)


def _finish(admission, cache, ticket: Ticket, hit: bool) -> None:
    """Settle untimed, as the accounting worker would; a miss is answered with an error (not
    cached), so the hit ratio stays at one half."""
    admission.settle(RequestRecord(ticket.info.flow_id, ticket.tenant, "anthropic",
                                   "anthropic.messages", "claude-sonnet-4-5", False, 200,
                                   ticket.info.started_at, cost_usd=0.0 if hit else 0.003))
    if not hit:
        cache.store(ticket, ResponseInfo(500, time.time()))


def pipeline_rows(n: int, redis_url: str | None) -> list[tuple[str, list[float], str]]:
    rows = []
    backends = [("diskcache", "", "≤ 1 ms")] + ([("redis (local)", redis_url, "≤ 2 ms")]
                                                if redis_url else [])
    for name, url, target in backends:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(data_dir=tmp, redis_url=url, rpm=10**6, tpm=10**9,
                                budget="1000000", budget_scope="both", optimize=False)
            hooks, whole, ratio = asyncio.run(_pipeline(settings, n))
        rows.append((f"{name}: admit + cache lookup hooks ({ratio:.0%} hits)", hooks, target))
        rows.append((f"{name}: whole prepare()", whole, ""))
    return rows


def key_timings(n: int) -> list[tuple[str, list[float]]]:
    small = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "You are terse." * 20,
             "messages": [{"role": "user", "content": "hello " * 300}]}
    large = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "You are terse.",
             "tools": [{"name": f"t{i}", "description": "d" * 200, "input_schema": {"type": "object"}}
                       for i in range(20)],
             "messages": [{"role": "user" if i % 2 == 0 else "assistant",
                           "content": [{"type": "text", "text": ("line of tool output %d\n" % i) * 200,
                                        "cache_control": {"type": "ephemeral"}}]}
                          for i in range(100)]}
    out = []
    for label, doc in (("cache key, 2 KB body", small), ("cache key, 500 KB body", large)):
        size = len(str(doc))
        ts = []
        for _ in range(max(20, n // 20)):
            t = time.perf_counter()
            cache_key("t", "anthropic.messages", doc)
            ts.append((time.perf_counter() - t) * 1000)
        out.append((f"{label} (~{size // 1000} KB)", ts))
    return out


def start_redis() -> tuple[subprocess.Popen, str] | None:
    binary = shutil.which("redis-server")
    if not binary:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--daemonize", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    proc.kill()
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    rows: list[tuple[str, list[float], str]] = []
    rows.append(("memory (reference)", run_backend(MemoryStorage(), args.requests), ""))
    with tempfile.TemporaryDirectory() as tmp:
        disk = DiskStorage(Path(tmp) / "bench")
        rows.append(("diskcache", run_backend(disk, args.requests), "≤ 1 ms"))
        disk.close()
    redis = start_redis()
    piped: list[tuple[str, list[float], str]] = []
    if redis is None:
        print("(redis-server not installed: Redis rows skipped)", file=sys.stderr)
        piped = pipeline_rows(args.requests, None)
    else:
        proc, url = redis
        try:
            from headroom_core.storage.redis_store import RedisStorage

            store = RedisStorage(url)
            rows.append(("redis (local)", run_backend(store, args.requests), "≤ 2 ms"))
            store.close()
            piped = pipeline_rows(args.requests, url)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    print(f"Admission (rate limit + budget reserve, scope both) + cache lookup, "
          f"{args.requests} requests, {os.cpu_count()} CPUs\n")
    _table(rows + [(name, ts, "") for name, ts in key_timings(args.requests)])
    print("\nThrough the pipeline (services.attach; ~2 KB body, 50 tenants, half hits)\n")
    _table(piped)


def _table(rows: list[tuple[str, list[float], str]]) -> None:
    print("| what | p50 ms | p99 ms | mean ms | target p50 |")
    print("|---|---:|---:|---:|---|")
    for name, ts, target in rows:
        print(f"| {name} | {statistics.median(ts):.3f} | {percentile(ts, 99):.3f} | "
              f"{statistics.fmean(ts):.3f} | {target} |")


if __name__ == "__main__":
    main()
