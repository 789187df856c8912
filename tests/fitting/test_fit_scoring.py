"""Each scoring factor moves the drop order, in every wire format.

Two units of nearly the same age, A (older) and B (newer), differ in one factor only. With that
factor weighted, B is dropped first; with its weight at zero, age decides and A goes first.
"""

from __future__ import annotations

import json

import pytest

import convgen
from headroom_core.fitting.manager import FitConfig, drop_order
from headroom_core.fitting.scoring import ScoringConfig, score_units
from headroom_core.fitting.toin import Toin, output_signature
from headroom_core.storage.memory import MemoryStorage

A_AT = 10


def _doc(endpoint, a: convgen.Round, b: convgen.Round, later: convgen.Round | None = None) -> dict:
    rounds = list(convgen.agent_script(24, seed=3, chat_every=0).rounds)
    rounds[A_AT], rounds[A_AT + 1] = a, b
    if later is not None:
        rounds[-6] = later
    return convgen.render(endpoint, convgen.Script(convgen.SYSTEM, convgen.TASK, tuple(rounds)),
                          model="test-model")


def _positions(doc, endpoint, weights: dict, toin=None) -> tuple[int, int]:
    config = FitConfig(scoring=ScoringConfig.from_weights(weights, semantic=False))
    order = drop_order(doc, endpoint, config, toin=toin)
    items = doc["input" if "input" in doc else "messages"]
    text = [json.dumps(items[u.start:u.end]) for u in order]
    return (next(i for i, t in enumerate(text) if "STEP-A" in t),
            next(i for i, t in enumerate(text) if "STEP-B" in t))


ONLY = {"recency": 0.3, "semantic": 0.0, "toin": 0.0, "error": 0.0, "reference": 0.0}


def _moves(doc, endpoint, factor: str, toin=None) -> None:
    a, b = _positions(doc, endpoint, {**ONLY, factor: 0.3}, toin)
    assert b < a, f"with {factor} weighted, the newer plain unit should be dropped first"
    a, b = _positions(doc, endpoint, ONLY, toin)
    assert a < b, "by age alone the older unit goes first"


def _run(name: str, output: str, tool="run_tests", args=None) -> convgen.Round:
    """A tool step tagged `name` in its arguments (Responses calls carry no assistant text)."""
    return convgen.Round("tool", f"{name}: running it.", output, tool, {**(args or {}), "step": name})


def _passing(n: int) -> str:
    return "\n".join(f"tests/test_misc.py::test_case_{n}_{i} PASSED" for i in range(6))


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_error_factor(endpoint):
    failing = convgen.traceback_output("test_case_fold", "src/misc/case.py")
    doc = _doc(endpoint, _run("STEP-A", failing), _run("STEP-B", _passing(2)))
    _moves(doc, endpoint, "error")


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_semantic_factor_bm25(endpoint):
    on_task = ("src/http/fold.py:88: continuation lines of an HTTP header are dropped by the "
               "parser when the header value is folded")
    off_task = "src/billing/ledger.py:12: invoice totals are rounded by the ledger when exported"
    doc = _doc(endpoint, _run("STEP-A", on_task, "grep"), _run("STEP-B", off_task, "grep"))
    _moves(doc, endpoint, "semantic")


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_reference_factor(endpoint):
    read = lambda tag, path: convgen.Round("tool", f"{tag}: reading {path}.", f"# {path}\nx = 1\n",
                                           "read_file", {"path": path, "step": tag})
    later = convgen.Round("chat", "I will now edit src/http/header_fold.py and fold_continuation_lines.",
                          "go ahead")
    doc = _doc(endpoint, read("STEP-A", "src/http/header_fold.py"), read("STEP-B", "src/misc/unrelated.py"),
               later)
    _moves(doc, endpoint, "reference")


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_toin_factor(endpoint):
    issues = json.dumps([{"id": i, "state": "open", "title": f"issue {i}"} for i in range(5)])
    builds = json.dumps([{"id": i, "status": "ok", "branch": f"b{i}"} for i in range(5)])
    toin = Toin(MemoryStorage())
    for _ in range(3):  # the model kept coming back for issue lists once compressed
        toin.record_compression("t", "fetch_issues", output_signature(issues))
        toin.record_retrieval("t", "fetch_issues", output_signature(issues), query="state open")
    doc = _doc(endpoint, _run("STEP-A", issues, "fetch_issues", {}), _run("STEP-B", builds, "fetch_builds", {}))
    _moves(doc, endpoint, "toin", toin.view("t"))


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_recency_factor(endpoint):
    doc = _doc(endpoint, _run("STEP-A", _passing(1)), _run("STEP-B", _passing(2)))
    a, b = _positions(doc, endpoint, ONLY)
    assert a < b


def test_scores_lie_in_unit_interval_and_position_only_ignores_content():
    from headroom_core.fitting.features import UnitFeatures

    feats = [UnitFeatures(f"text {i} Traceback (most recent call last)" * (i % 2), 10, float(i % 2),
                          frozenset({f"src/a_{i}.py"}), (), f"text {i}") for i in range(6)]
    result = score_units(range(6), feats, "text", config=ScoringConfig(semantic=False))
    for s in result.scores:
        for value in (s.score, s.recency, s.semantic, s.toin, s.error, s.reference):
            assert 0.0 <= value <= 1.0
    plain = score_units(range(6), feats, "text", config=ScoringConfig(intelligent=False))
    assert [s.score for s in plain.scores] == [i / 5 for i in range(6)]
    assert plain.semantic_method == "off"


@pytest.mark.ml
def test_semantic_factor_with_embeddings():
    from headroom_core import embeddings

    if not embeddings.available():
        pytest.skip("the semantic extra is not installed")
    embeddings.load()
    endpoint = convgen.FORMATS[0]
    on_task = "The HTTP header parser loses folded continuation lines of header values."
    off_task = "Quarterly invoice totals in the billing ledger are rounded to cents."
    doc = _doc(endpoint, _run("STEP-A", on_task, "grep"), _run("STEP-B", off_task, "grep"))
    config = lambda w: FitConfig(scoring=ScoringConfig.from_weights(w, semantic=True))
    for weights, a_first in (({**ONLY, "semantic": 0.3}, False), (ONLY, True)):
        order = drop_order(doc, endpoint, config(weights), deadline=None)
        text = [json.dumps(doc["messages"][u.start:u.end]) for u in order]
        a = next(i for i, t in enumerate(text) if "STEP-A" in t)
        b = next(i for i, t in enumerate(text) if "STEP-B" in t)
        assert (a < b) is a_first
