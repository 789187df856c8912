"""The time budget never makes a re-sent output switch between its original and its rendering:
a request whose compression ends too close to its deadline leaves its first-seen outputs whole,
and they stay whole when sent again."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from headroom_core.compression import engine
from headroom_core.compression.engine import CompressionConfig, compress_request
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import workloads as W  # noqa: E402

LOG = W.incident_log(seed=21, lines=1500)
ISSUES = W.issue_json(seed=22, n=40)
CFG = CompressionConfig(budget_ms=60_000)  # the deadline is given per call below


def doc(*outputs) -> dict:
    messages: list[dict] = [{"role": "user", "content": "what failed?"}]
    for k, w in enumerate(outputs):
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{k}", "name": w.tool_name, "input": w.tool_args}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": w.text}]})
    return {"model": "claude-sonnet-4-5", "max_tokens": 512, "messages": messages}


def sent(d: dict) -> list[str]:
    return [m["content"][0]["content"] for m in d["messages"][2::2]]


def run(d: dict, ccr, config: CompressionConfig, deadline: float | None = None):
    return compress_request(parse_request(d, Endpoint.ANTHROPIC_MESSAGES), tenant="t", ccr=ccr,
                            config=config, deadline=deadline)


@pytest.fixture(autouse=True)
def _warm():
    """As after the process's first request (the first one has a warm-up allowance)."""
    engine._warm.set()


def late_deadline() -> float:
    """A deadline the request is already within LATE_SHARE of (but not past)."""
    return time.monotonic() + engine.LATE_SHARE * CFG.budget_ms / 1000.0 * 0.5


def test_late_first_sight_goes_out_whole_and_stays_whole(ccr):
    first = doc(LOG, ISSUES)
    report = run(first, ccr, CFG, deadline=late_deadline())
    assert sent(first) == [LOG.text, ISSUES.text] and not report.transforms and report.timed_out
    again = doc(LOG, ISSUES)
    report = run(again, ccr, CFG)  # plenty of time now: still whole, as on the first turn
    assert sent(again) == [LOG.text, ISSUES.text] and not report.transforms
    engine.MEMO.clear()  # a new process decides afresh
    fresh = doc(LOG, ISSUES)
    assert run(fresh, ccr, CFG).transforms and sent(fresh) != [LOG.text, ISSUES.text]


def test_outputs_rendered_on_earlier_turns_keep_their_rendering(ccr):
    turn1 = doc(LOG)
    run(turn1, ccr, CFG)
    rendered = sent(turn1)[0]
    assert rendered != LOG.text
    turn2 = doc(LOG, ISSUES)
    report = run(turn2, ccr, CFG, deadline=late_deadline())
    assert sent(turn2) == [rendered, ISSUES.text]  # the new one whole, the old one as before
    assert [t.message_index for t in report.transforms] == [2]
    turn3 = doc(LOG, ISSUES)
    run(turn3, ccr, CFG)
    assert sent(turn3) == [rendered, ISSUES.text]


def test_a_request_in_time_renders_as_usual(ccr):
    d = doc(LOG, ISSUES)
    report = run(d, ccr, CFG, deadline=time.monotonic() + 60)
    assert len(report.transforms) == 2 and not report.timed_out


def test_the_first_request_of_a_process_is_not_held_to_the_late_rule(ccr):
    engine._warm.clear()
    d = doc(LOG, ISSUES)
    assert len(run(d, ccr, CFG, deadline=late_deadline()).transforms) == 2
    assert engine._warm.is_set()


def test_the_optimiser_keeps_to_the_pipelines_deadline(tmp_path, ccr):
    """A job that only starts once the pipeline has given up on it (it waited in the pool)
    compresses nothing and remembers nothing: the original went out."""
    from headroom_core import services
    from headroom_core.pipeline import HeadroomCore
    from headroom_core.settings import Settings

    settings = Settings(data_dir=str(tmp_path), cache=False)
    core = HeadroomCore(settings)
    svc = services.attach(core, settings)
    try:
        late = doc(LOG, ISSUES)
        outcome = core.optimizer.optimize(parse_request(late, Endpoint.ANTHROPIC_MESSAGES), "t",
                                          progress={"deadline": time.monotonic() - 1.0})
        assert not outcome.changed and sent(late) == [LOG.text, ISSUES.text]
        assert len(engine.MEMO._data) == 0
        in_time = doc(LOG, ISSUES)
        outcome = core.optimizer.optimize(parse_request(in_time, Endpoint.ANTHROPIC_MESSAGES), "t",
                                          progress={"deadline": time.monotonic() + 60.0})
        assert outcome.changed and sent(in_time) != [LOG.text, ISSUES.text]
    finally:
        core.close()
        svc.close()


def test_without_a_callers_deadline_the_budget_only_bounds_the_work(ccr, monkeypatch):
    """The library's own budget: nothing is left whole for ending late (no one stops waiting)."""
    calls = []

    def clock() -> float:  # the request starts at 0 s and every later look says 1.9 s
        calls.append(None)
        return 0.0 if len(calls) == 1 else 1.9

    monkeypatch.setattr(engine.time, "monotonic", clock)
    d = doc(LOG, ISSUES)
    report = compress_request(parse_request(d, Endpoint.ANTHROPIC_MESSAGES), tenant="t", ccr=ccr,
                              config=CompressionConfig(budget_ms=2000))
    assert len(report.transforms) == 2 and not report.timed_out
