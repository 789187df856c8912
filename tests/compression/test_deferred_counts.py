"""Outputs seen for the first time are decided on an estimate of their size and counted exactly
off the request path: same renderings, same figures once settled, estimates never decide a
close call."""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

from headroom_core.compression import counting, engine
from headroom_core.compression.engine import CompressionConfig, compress_output, compress_request
from headroom_core.pipeline import HeadroomCore, OptimizeOutcome, RequestInfo, ResponseInfo
from headroom_core.records import TransformSummary
from headroom_core.settings import Settings
from headroom_core.tokens import count_text
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import workloads as W  # noqa: E402

CFG = CompressionConfig(budget_ms=None)
LOG = W.incident_log(seed=11, lines=3000)
ISSUES = W.issue_json(seed=12, n=60)


def doc() -> dict:
    messages: list[dict] = [{"role": "user", "content": LOG.query}]
    for k, w in enumerate((LOG, ISSUES)):
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{k}", "name": w.tool_name, "input": w.tool_args}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": w.text}]})
    return {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": messages}


def forget() -> None:
    engine.MEMO.clear()
    counting.COUNTS.clear()


def compress(d: dict, ccr, exact: bool):
    return compress_request(parse_request(d, Endpoint.ANTHROPIC_MESSAGES), tenant="t", ccr=ccr,
                            config=CFG, exact=exact)


def test_first_sight_renders_without_counting_the_original(ccr):
    assert len(LOG.text) > counting.EXACT_CHARS
    result = compress_output(LOG.text, tenant="t", ccr=ccr, config=CFG, tool_name=LOG.tool_name)
    assert result.text is not None and not result.before_exact
    assert counting.COUNTS.peek(result.full_hash, None) is None
    assert abs(result.tokens_before / count_text(LOG.text) - 1) < 0.05
    assert result.tokens_after == count_text(result.text)  # the rendering is counted exactly


def test_deferred_counts_settle_to_the_exact_report_with_the_same_bytes(ccr):
    eager_doc, lazy_doc = doc(), doc()
    eager = compress(eager_doc, ccr, exact=True)
    forget()
    lazy = compress(lazy_doc, ccr, exact=False)
    assert lazy_doc == eager_doc  # renderings do not depend on when counting happens
    assert not eager.pending and len(lazy.pending) == 2
    assert [p.index for p in lazy.pending] == [0, 1]
    assert lazy.tokens_after == eager.tokens_after
    assert lazy.transforms != eager.transforms  # estimates until settled
    assert lazy.settled() == eager
    assert [t.tokens_before for t in eager.transforms] == [count_text(LOG.text), count_text(ISSUES.text)]


def test_a_resent_output_reports_exact_counts_once_settled(ccr):
    compress(doc(), ccr, exact=False).settled()
    again = compress(doc(), ccr, exact=False)
    assert not again.pending
    assert [t.tokens_before for t in again.transforms] == [count_text(LOG.text), count_text(ISSUES.text)]


def test_a_close_call_is_decided_on_the_exact_count(ccr):
    exact = compress_output(LOG.text, tenant="t", ccr=ccr, config=CFG, tool_name=LOG.tool_name)
    before, after = count_text(LOG.text), exact.tokens_after
    for nudge, used in ((-1e-4, True), (1e-4, False)):  # min_savings just below / above the real saving
        forget()
        config = CompressionConfig(budget_ms=None, min_savings=1 - after / before + nudge)
        result = compress_output(LOG.text, tenant="t", ccr=ccr, config=config, tool_name=LOG.tool_name)
        assert (result.text is not None) is used
        assert counting.COUNTS.peek(result.full_hash, None) == before  # counted to decide


def test_a_size_near_min_tokens_is_decided_on_the_exact_count(ccr):
    text = W.incident_log(seed=5, lines=2000).text
    tokens = count_text(text)
    for min_tokens, used in ((tokens, True), (tokens + 1, False)):
        forget()
        config = CompressionConfig(budget_ms=None, min_tokens=min_tokens)
        result = compress_output(text, tenant="t", ccr=ccr, config=config, tool_name="Bash")
        assert (result.text is not None) is used, min_tokens


# --- through the pipeline: estimates on the way out, exact figures when accounted -------------

class Settling:
    """An optimiser whose figures are estimates until its settle() runs."""

    def __init__(self) -> None:
        self.settled = 0

    def optimize(self, request, tenant, headers=None):
        request.doc["messages"][0]["content"] = "short"

        def settle() -> OptimizeOutcome:
            self.settled += 1
            return OptimizeOutcome(True, 1000, 40, (TransformSummary("log", 1000, 40),))

        return OptimizeOutcome(True, 990, 40, (TransformSummary("log", 990, 40),), settle=settle)


async def test_finish_records_the_settled_figures_and_the_flow_says_estimated():
    core = HeadroomCore(Settings(min_tokens=10))
    core.optimizer = opt = Settling()
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x " * 200}]}).encode()
    headers = {"authorization": "Bearer k"}
    info = RequestInfo("f1", "POST", "/v1/chat/completions", headers, body,
                       core.route("POST", "/v1/chat/completions", headers), time.time())
    decision = await core.prepare(info)
    meta = decision.ticket.summary()
    assert (meta["tokens_before"], meta["tokens_before_estimated"]) == (990, True)
    assert opt.settled == 0  # nothing counted on the request path
    rec = core.finish(decision.ticket, ResponseInfo(200, time.time()))
    assert opt.settled == 1
    assert (rec.tokens_before, rec.tokens_after) == (1000, 40)
    assert rec.transforms == (TransformSummary("log", 1000, 40),)


async def test_a_failing_settle_keeps_the_estimates():
    class Broken(Settling):
        def optimize(self, request, tenant, headers=None):
            outcome = super().optimize(request, tenant, headers)

            def settle():
                raise RuntimeError("no tokenizer")

            return OptimizeOutcome(True, 990, 40, outcome.transforms, settle=settle)

    core = HeadroomCore(Settings(min_tokens=10))
    core.optimizer = Broken()
    body = json.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x " * 200}]}).encode()
    info = RequestInfo("f2", "POST", "/v1/chat/completions", {}, body,
                       core.route("POST", "/v1/chat/completions", {}), time.time())
    decision = await core.prepare(info)
    rec = core.finish(decision.ticket, ResponseInfo(200, time.time()))
    assert (rec.tokens_before, rec.tokens_after) == (990, 40)


async def test_the_proxy_optimiser_settles_to_the_engines_exact_figures(tmp_path, ccr):
    from headroom_core import services

    settings = Settings(data_dir=str(tmp_path), cache=False)
    core = HeadroomCore(settings)
    services.attach(core, settings)
    body = json.dumps(doc()).encode()
    headers = {"x-api-key": "sk-test"}
    info = RequestInfo("f3", "POST", "/v1/messages", headers, body,
                       core.route("POST", "/v1/messages", headers), time.time())
    decision = await core.prepare(info)
    assert decision.ticket.changed and decision.ticket.settle is not None
    rec = core.finish(decision.ticket, ResponseInfo(200, time.time()))
    forget()
    eager = compress(doc(), ccr, exact=True)
    assert (rec.tokens_before, rec.tokens_after) == (eager.tokens_before, eager.tokens_after)
    by_kind = {t.kind: t.tokens_before for t in rec.transforms}
    assert by_kind == {"log": count_text(LOG.text), "json": count_text(ISSUES.text)}
    core.close()
