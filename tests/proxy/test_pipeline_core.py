"""The sans-IO pipeline: decisions, hooks, accounting, local endpoint documents."""

from __future__ import annotations

import json
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from headroom_core.accounting import StreamAccount, body_outcome, request_facts
from headroom_core.errors import LocalResponse, provider_error
from headroom_core.pipeline import (Action, HeadroomCore, OptimizeOutcome, Refusal, RequestInfo,
                                    ResponseInfo)
from headroom_core.records import TransformSummary
from headroom_core.settings import Settings
from headroom_core.usage import Usage
from headroom_core.wire.common import Endpoint

BODY = json.dumps({"model": "gpt-4o", "messages": [
    {"role": "user", "content": "a long tool output " * 20}]}, separators=(",", ":")).encode()


def info(core: HeadroomCore, path: str = "/v1/chat/completions", body: bytes = BODY,
         headers: dict | None = None, method: str = "POST") -> RequestInfo:
    headers = headers or {}
    return RequestInfo("flow-1", method, path, headers, body, core.route(method, path, headers),
                       time.time())


async def test_no_hooks_forwards_the_original():
    core = HeadroomCore(Settings())
    d = await core.prepare(info(core))
    assert d.action is Action.FORWARD and d.body is None
    assert d.ticket.tokens_before is None  # counted later, off the request path


async def test_optimizer_result_becomes_the_new_body_and_counts():
    class Halve:
        def optimize(self, request, tenant, headers=None):
            request.doc["messages"][0]["content"] = "short"
            return OptimizeOutcome(True, 100, 40, (TransformSummary("text", 100, 40),))

    core = HeadroomCore(Settings(min_tokens=10))
    core.optimizer = Halve()
    d = await core.prepare(info(core, headers={"authorization": "Bearer k"}))
    assert d.action is Action.FORWARD_CHANGED
    assert json.loads(d.body)["messages"][0]["content"] == "short"
    assert b", " not in d.body  # compact like the client's body
    rec = core.finish(d.ticket, ResponseInfo(200, time.time(), {"content-type": "application/json"},
                                             b'{"usage":{"prompt_tokens":40,"completion_tokens":2}}'))
    assert (rec.tokens_before, rec.tokens_after, rec.tokens_saved) == (100, 40, 60)
    assert rec.tenant.startswith("t_") and "k" not in rec.tenant
    health = core.stats.health_stats()
    assert {k: health[k] for k in ("total_requests", "tokens_saved", "savings_percent")} == \
        {"total_requests": 1, "tokens_saved": 60, "savings_percent": 60.0}


async def test_optimizer_that_changes_nothing_keeps_the_bytes():
    class Noop:
        def optimize(self, request, tenant, headers=None):
            return OptimizeOutcome(False, 50, 50)

    core = HeadroomCore(Settings(min_tokens=10))
    core.optimizer = Noop()
    d = await core.prepare(info(core))
    assert d.action is Action.FORWARD and d.ticket.tokens_before == 50


async def test_no_optimize_setting_and_other_endpoints_skip_the_optimizer():
    class Never:
        def optimize(self, request, tenant, headers=None):
            raise AssertionError("must not run")

    core = HeadroomCore(Settings(optimize=False))
    core.optimizer = Never()
    assert (await core.prepare(info(core))).action is Action.FORWARD
    core.configure(Settings())
    assert (await core.prepare(info(core, "/v1/embeddings"))).action is Action.FORWARD


async def test_non_json_body_is_a_note_not_an_error():
    class Never:
        def optimize(self, request, tenant, headers=None):
            raise AssertionError("must not run")

    core = HeadroomCore(Settings(min_tokens=10))
    core.optimizer = Never()
    d = await core.prepare(info(core, body=b"\x00\x01 not json"))
    assert d.action is Action.FORWARD and not d.ticket.error and d.ticket.notes


async def test_admission_refusal_answers_locally_and_is_counted():
    class Deny:
        async def admit(self, ticket):
            return Refusal(provider_error("openai", 429, "slow down", retry_after=3), "rate_limit")

        def settle(self, record):
            self.settled = record

    core = HeadroomCore(Settings())
    core.admission = deny = Deny()
    d = await core.prepare(info(core))
    assert d.action is Action.RESPOND and d.response.status == 429
    rec = core.finish(d.ticket, ResponseInfo(429, time.time(), {}, d.response.body))
    assert rec.refused == "rate_limit" and deny.settled is rec
    snap = core.stats.snapshot()
    assert snap["refused"] == {"rate_limit": 1} and snap["requests"]["forwarded"] == 0


async def test_cache_hit_and_store():
    class Cache:
        stored = None

        async def lookup(self, ticket):
            return LocalResponse(200, (("content-type", "application/json"),), b"{}") \
                if ticket.info.path == "/v1/chat/completions" else None

        def store(self, ticket, response):
            self.stored = response

    core = HeadroomCore(Settings())
    core.response_cache = cache = Cache()
    d = await core.prepare(info(core))
    assert d.action is Action.RESPOND and d.ticket.cache == "hit"
    replay = core.finish(d.ticket, ResponseInfo(200, time.time(), {"content-type": "application/json"},
                                                b'{"usage":{"prompt_tokens":40,"completion_tokens":2}}'))
    assert replay.usage == Usage() and replay.cache == "hit"  # the provider billed nothing
    d2 = await core.prepare(info(core, "/v1/responses"))
    assert d2.action is Action.FORWARD and d2.ticket.cache == "miss"
    core.finish(d2.ticket, ResponseInfo(200, time.time()))
    assert cache.stored is not None
    assert (await core.prepare(info(core, headers={"x-headroom-bypass": "1"}))).ticket.cache == "off"


async def test_pricer_and_sinks_get_every_record():
    core = HeadroomCore(Settings())
    core.pricer = lambda model, usage: 0.5
    records = []
    core.sinks.append(records.append)
    d = await core.prepare(info(core))
    core.finish(d.ticket, ResponseInfo(200, time.time()))
    assert records[0].cost_usd == 0.5 and core.stats.snapshot()["cost_usd"] == 0.5


async def test_local_endpoints_are_not_requests():
    core = HeadroomCore(Settings())
    d = await core.prepare(info(core, "/health", b"", method="GET"))
    assert d.action is Action.RESPOND
    assert core.finish(d.ticket, ResponseInfo(200, time.time())) is None
    doc = json.loads(d.response.body)
    assert doc["status"] == "healthy" and doc["stats"]["total_requests"] == 0
    assert doc["features"]["optimize"] == "not yet available"  # no engine installed


def test_stats_and_metrics_documents():
    core = HeadroomCore(Settings())
    stats = json.loads(core.local_response("stats", "GET").body)
    assert {"requests", "tokens", "usage", "latency_ms", "definitions", "cache", "compression",
            "refused", "retrieval", "version"} <= set(stats)
    metrics = core.local_response("metrics", "GET")
    assert metrics.headers[0][1].startswith("text/plain")
    list(text_string_to_metric_families(metrics.body.decode()))
    assert core.local_response("stats", "DELETE").status == 405


def test_request_facts_and_body_outcome():
    facts = request_facts(BODY, Endpoint.OPENAI_CHAT)
    assert facts.model == "gpt-4o" and facts.tokens > 20 and facts.stream is False
    assert request_facts(b"\xff" * 10, Endpoint.OPENAI_CHAT).tokens == 0
    assert request_facts(b"[" * 50000 + b"]" * 50000, Endpoint.OPENAI_CHAT).tokens == 0
    out = body_outcome(Endpoint.ANTHROPIC_MESSAGES, 200, {"content-type": "application/json"},
                       b'{"model":"claude-x","usage":{"input_tokens":3,"output_tokens":4,'
                       b'"cache_read_input_tokens":5}}')
    assert out.usage == Usage(3, 4, 5, 0) and out.model == "claude-x"
    err = body_outcome(Endpoint.ANTHROPIC_MESSAGES, 429, {"content-type": "application/json"},
                       b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}')
    assert err.error == "rate_limit_error: slow"


@pytest.mark.parametrize("encoding", ["", "gzip"])
def test_stream_account_returns_chunks_unchanged(encoding):
    import gzip as gz

    events = (b'data: {"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":9,'
              b'"completion_tokens":2}}\n\ndata: [DONE]\n\n')
    raw = gz.compress(events) if encoding else events
    tap = StreamAccount(Endpoint.OPENAI_CHAT, encoding)
    out = b"".join(tap(raw[i:i + 5]) for i in range(0, len(raw), 5)) + tap(b"")
    assert out == raw
    assert tap.outcome().usage == Usage(9, 2, 0, 0)


async def test_bodies_below_min_tokens_bytes_skip_the_optimizer_hop():
    class Never:
        def optimize(self, request, tenant, headers=None):
            raise AssertionError("must not run")

    core = HeadroomCore(Settings(min_tokens=len(BODY) + 1))
    core.optimizer = Never()
    assert (await core.prepare(info(core))).action is Action.FORWARD


async def test_console_lines_are_written_once_per_batch():
    core = HeadroomCore(Settings())
    writes: list[str] = []
    core.console = writes.append
    for _ in range(3):
        d = await core.prepare(info(core))
        core.finish_later(d.ticket, ResponseInfo(200, time.time()))
    await core.flush()
    assert len(writes) == 1 and len(writes[0].splitlines()) == 3
    assert writes[0].startswith("openai  gpt-4o")
    core.configure(Settings(quiet=True))
    d = await core.prepare(info(core))
    core.finish_later(d.ticket, ResponseInfo(200, time.time()))
    await core.flush()
    assert len(writes) == 1


async def test_the_no_decision_path_leaves_cache_and_admission_alone_when_they_do_not_apply():
    class Cache:
        looked_up = 0

        async def lookup(self, ticket):
            self.looked_up += 1
            return None

        def store(self, ticket, response):
            pass

    core = HeadroomCore(Settings(cache=False))
    core.response_cache = cache = Cache()
    d = await core.prepare(info(core, headers={"x-api-key": "k"}))
    assert d.action is Action.FORWARD and d.ticket.cache == "off"
    assert d.ticket.tenant.startswith("t_") and d.ticket.overhead_ms >= 0
    core.configure(Settings(cache=True))
    bypassed = await core.prepare(info(core, headers={"x-headroom-bypass": "yes"}))
    assert bypassed.ticket.bypass and bypassed.ticket.cache == "off" and cache.looked_up == 0
    looked = await core.prepare(info(core))
    assert looked.ticket.cache == "miss" and cache.looked_up == 1
    local = await core.prepare(info(core, "/health", b"", method="GET"))
    assert local.action is Action.RESPOND and local.response.status == 200
