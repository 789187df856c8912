"""Renderings score with their originals' TOIN patterns.

TOIN learns from originals (compressions signed from what the client sent, retrievals from the
CCR entry) while context fitting sees what the engine put in the request: our renderings, whose
own signature is no original's. Scoring resolves a rendering's marker hash to its original's
pattern; this file shows it does, in every format, cheaply, and with the other TOIN consumers
(learning, hints, retrievals) agreeing on the pattern.
"""

from __future__ import annotations

import json

import pytest

import convgen
from headroom_core.ccr import CCRStore, content_hash, marker_hash
from headroom_core.compression.markers import find_markers
from headroom_core.fitting import features as features_mod
from headroom_core.fitting.features import FeatureCache, rendering_hash
from headroom_core.fitting.manager import FitConfig, drop_order
from headroom_core.fitting.scoring import ScoringConfig, toin_scores
from headroom_core.fitting.toin import ORIGIN_RETRY_S, Toin, ToinHints, output_signature
from headroom_core.fitting.units import split_conversation
from headroom_core.optimizer import RequestOptimizer
from headroom_core.services import Services
from headroom_core.settings import Settings
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request

TENANT = "t"
A_AT = 10
ONLY = {"recency": 0.3, "semantic": 0.0, "toin": 0.0, "error": 0.0, "reference": 0.0}


def issues(offset: int = 0) -> str:
    return json.dumps([{"id": offset + i, "state": "open" if i % 9 else "closed", "labels": ["bug"],
                        "title": f"issue {offset + i} in the parser"} for i in range(200)])


def builds(offset: int = 0) -> str:
    return json.dumps([{"build": offset + i, "status": "ok" if i % 9 else "failed", "branch": "main",
                        "runner": f"runner {offset + i} in the farm"} for i in range(200)])


class CountingStorage(MemoryStorage):
    """Counts reads of TOIN's marker-hash map."""

    def __init__(self) -> None:
        super().__init__()
        self.origin_reads = 0

    def get(self, ns: str, key: str) -> bytes | None:
        if key.startswith("o:"):
            self.origin_reads += 1
        return super().get(ns, key)


@pytest.fixture
def services(tmp_path):
    s = Services(Settings(data_dir=str(tmp_path)))
    s.ccr = CCRStore(MemoryStorage())
    s.toin = Toin(CountingStorage())
    yield s
    s.close()


def optimise(s: Services, doc: dict, endpoint: Endpoint) -> dict:
    """The proxy's optimiser on `doc` (compression, then fitting, which this window skips)."""
    req = parse_request(doc, endpoint)
    RequestOptimizer(s.settings, s.ccr, MemoryStorage(), s.toin).optimize(req, TENANT)
    return req.doc


def _step(name: str, output: str, tool: str) -> convgen.Round:
    return convgen.Round("tool", f"{name}: fetching.", output, tool, {"step": name})


def _doc(endpoint: Endpoint, a: convgen.Round, b: convgen.Round) -> dict:
    rounds = list(convgen.agent_script(24, seed=3, chat_every=0).rounds)
    rounds[A_AT], rounds[A_AT + 1] = a, b
    return convgen.render(endpoint, convgen.Script(convgen.SYSTEM, convgen.TASK, tuple(rounds)),
                          model="test-model")


def _output_of(doc: dict, endpoint: Endpoint, tag: str) -> str:
    """The text of the tool result answering the call tagged `tag` (as the request holds it)."""
    return next(o.text for o in parse_request(doc, endpoint).tool_outputs() if tag in o.tool_args)


def _marker_of(doc: dict, endpoint: Endpoint, tag: str) -> str:
    digest = rendering_hash(_output_of(doc, endpoint, tag))
    assert digest is not None, f"the output of {tag} was compressed"
    return digest


def _positions(doc: dict, endpoint: Endpoint, weights: dict, toin) -> tuple[int, int]:
    config = FitConfig(scoring=ScoringConfig.from_weights(weights, semantic=False))
    order = drop_order(doc, endpoint, config, toin=toin)
    items = doc["input" if "input" in doc else "messages"]
    text = [json.dumps(items[u.start:u.end]) for u in order]
    return (next(i for i, t in enumerate(text) if "STEP-A" in t),
            next(i for i, t in enumerate(text) if "STEP-B" in t))


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_a_compressed_output_whose_pattern_is_retrieved_outlives_an_equal_one(services, endpoint):
    # an earlier issue list, compressed, that the model came back for three times
    first = optimise(services, _doc(endpoint, _step("STEP-A", issues(5000), "fetch_issues"),
                                    _step("STEP-B", builds(5000), "fetch_builds")), endpoint)
    for query in ("", "state closed", ""):
        services.learn_retrieval(TENANT, _marker_of(first, endpoint, "STEP-A"), query)
    # a new session: another issue list (same pattern, new content) and a build list, both
    # compressed; the issue list is older, so by age alone it would go first
    doc = optimise(services, _doc(endpoint, _step("STEP-A", issues(), "fetch_issues"),
                                  _step("STEP-B", builds(), "fetch_builds")), endpoint)
    hash_a, hash_b = _marker_of(doc, endpoint, "STEP-A"), _marker_of(doc, endpoint, "STEP-B")
    view = services.toin.view(TENANT, services.ccr)
    assert view.rendering_pattern(hash_a) == ("fetch_issues", output_signature(issues()))
    assert view.rendering_pattern(hash_b) == ("fetch_builds", output_signature(builds()))

    a, b = _positions(doc, endpoint, {**ONLY, "toin": 0.3}, view)
    assert b < a, "the rendering of the often-retrieved pattern is dropped after the other"
    a, b = _positions(doc, endpoint, ONLY, view)
    assert a < b, "by age alone the older one goes first"


def test_a_retrieval_of_a_renderings_marker_is_learned_for_the_originals_pattern(services):
    endpoint = Endpoint.ANTHROPIC_MESSAGES
    doc = optimise(services, _doc(endpoint, _step("STEP-A", issues(), "fetch_issues"),
                                  _step("STEP-B", builds(), "fetch_builds")), endpoint)
    digest = _marker_of(doc, endpoint, "STEP-A")
    services.learn_retrieval(TENANT, digest, "state closed")
    services.learn_retrieval(TENANT, digest.upper(), "")  # the model's spelling of the hash
    rows = {p.tool_name: p for p in services.toin.top_patterns(TENANT)}
    assert rows["fetch_issues"].signature == output_signature(issues())
    assert (rows["fetch_issues"].compressions, rows["fetch_issues"].retrievals) == (1, 2)
    assert rows["fetch_issues"].top_fields[0] == "state"
    assert rows["fetch_builds"].retrievals == 0
    rendering_sig = output_signature(_output_of(doc, endpoint, "STEP-A"))
    assert all(p.signature != rendering_sig for p in rows.values()), "nothing learned under a rendering"


def test_renderings_resolve_from_a_memo_without_signing(services, monkeypatch):
    endpoint = Endpoint.ANTHROPIC_MESSAGES
    doc = optimise(services, _doc(endpoint, _step("STEP-A", issues(), "fetch_issues"),
                                  _step("STEP-B", builds(), "fetch_builds")), endpoint)
    conv = split_conversation(doc, endpoint, 4)
    signed: list[str] = []
    real = features_mod.output_signature
    monkeypatch.setattr(features_mod, "output_signature", lambda text: signed.append(text) or real(text))
    feats = [FeatureCache().features(conv, u, endpoint, "test-model") for u in conv.units]
    rendered = [f for f in feats if f.rendered]
    assert {f.rendered[0][0] for f in rendered} >= {"fetch_issues", "fetch_builds"}
    assert all(not f.patterns for f in rendered), "a rendering's own signature is never taken"
    assert not any("[headroom: " in t for t in signed)

    # a restarted process (same storage): one read per rendering, then none on later turns
    storage = services.toin._storage
    fresh = Toin(storage)
    fresh.record_retrieval(TENANT, "fetch_issues", output_signature(issues()))
    view = fresh.view(TENANT)  # no CCR fallback: the map written at compression time answers
    storage.origin_reads = 0
    first = toin_scores(feats, view)
    assert storage.origin_reads == sum(len(f.rendered) for f in feats)
    assert max(first) == 0.5  # one retrieval per compression + 1
    for _ in range(3):
        assert toin_scores(feats, view) == first
    assert storage.origin_reads == sum(len(f.rendered) for f in feats)


def test_a_rendering_toin_never_saw_compressed_resolves_through_ccr_once():
    """Compress-first renderings, or TOIN data older than the marker map: the CCR entry's
    original is signed once, and what it gave is remembered for every instance."""
    now = [1000.0]
    storage, ccr = CountingStorage(), CCRStore(MemoryStorage())
    digest = marker_hash(ccr.put(TENANT, issues(), kind="json", tool_name="fetch_issues"))
    toin = Toin(storage, clock=lambda: now[0])
    toin.record_retrieval(TENANT, "fetch_issues", output_signature(issues()))

    assert toin.origin(TENANT, digest) is None
    reads = storage.origin_reads
    now[0] += ORIGIN_RETRY_S / 2
    assert toin.origin(TENANT, digest) is None and storage.origin_reads == reads, "a miss is memoised"
    now[0] += ORIGIN_RETRY_S
    view = toin.view(TENANT, ccr)
    assert view.rendering_pattern(digest) == ("fetch_issues", output_signature(issues()))
    assert Toin(storage).origin(TENANT, digest) == ("fetch_issues", output_signature(issues()))
    assert Toin(storage).origin("other", digest) is None, "per tenant"

    dropped = marker_hash(ccr.put(TENANT, "dropped turns " * 40, kind="context"))
    assert view.rendering_pattern(dropped) is None, "an entry without a tool has no pattern"


def test_parallel_results_in_one_message_are_learned_under_their_own_patterns(services):
    """An Anthropic user message holds every result of parallel calls; each compressed one is
    counted under its own original's pattern, and its marker resolves to it."""
    doc = {"model": "test-model", "max_tokens": 100, "messages": [
        {"role": "user", "content": "Look at the issues and the builds."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_1", "name": "fetch_issues", "input": {}},
            {"type": "tool_use", "id": "toolu_2", "name": "fetch_builds", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": issues()},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": builds()}]}]}
    out = optimise(services, doc, Endpoint.ANTHROPIC_MESSAGES)
    rows = {p.tool_name: p.signature for p in services.toin.top_patterns(TENANT)}
    assert rows == {"fetch_issues": output_signature(issues()), "fetch_builds": output_signature(builds())}
    view = services.toin.view(TENANT)
    for block, tool in zip(out["messages"][2]["content"], ("fetch_issues", "fetch_builds")):
        assert view.rendering_pattern(rendering_hash(block["content"])) == (tool, rows[tool])


def test_hints_are_not_fixed_for_a_rendering_the_client_sent(services):
    endpoint = Endpoint.ANTHROPIC_MESSAGES
    doc = optimise(services, _doc(endpoint, _step("STEP-A", issues(), "fetch_issues"),
                                  _step("STEP-B", builds(), "fetch_builds")), endpoint)
    rendering = _output_of(doc, endpoint, "STEP-A")
    assert find_markers(rendering)
    provide = RequestOptimizer(services.settings, services.ccr, MemoryStorage(),
                               services.toin)._hint_provider(TENANT)
    digest = content_hash(rendering)
    assert provide("fetch_issues", rendering, digest) == ToinHints()
    assert services.toin._storage.get(f"toin:{TENANT}", f"h:{digest}") is None
    assert all(p.signature != output_signature(rendering) for p in services.toin.top_patterns(TENANT))


def test_an_output_quoting_several_markers_is_an_output_of_its_own():
    one = '[headroom: 9 lines omitted; call headroom_retrieve(hash="0123456789abcdef") for the rest]'
    two = one.replace("0123456789abcdef", "fedcba9876543210")
    assert rendering_hash(f"head\n{one}\ntail\n{one}") == "0123456789abcdef"
    assert rendering_hash(f"log of a run\n{one}\n{two}") is None
    assert rendering_hash("plain output") is None


def test_toin_outage_scores_zero_instead_of_failing(services):
    endpoint = Endpoint.ANTHROPIC_MESSAGES
    doc = optimise(services, _doc(endpoint, _step("STEP-A", issues(), "fetch_issues"),
                                  _step("STEP-B", builds(), "fetch_builds")), endpoint)
    conv = split_conversation(doc, endpoint, 4)
    feats = [FeatureCache().features(conv, u, endpoint, "test-model") for u in conv.units]

    class Down:
        def importance(self, tool: str, sig: str) -> float:
            raise ConnectionError("storage down")

        def rendering_pattern(self, digest: str):
            raise ConnectionError("storage down")

    assert toin_scores(feats, Down()) == [0.0] * len(feats)


def test_marker_boilerplate_makes_renderings_neither_reference_nor_resemble_each_other(services):
    """Every rendering carries the same marker words (`headroom_retrieve`, `first/last`, ...):
    they must not count as the newer rendering mentioning the older one, nor as shared topic."""
    from headroom_core.fitting.scoring import reference_scores

    endpoint = Endpoint.ANTHROPIC_MESSAGES
    doc = optimise(services, _doc(endpoint, _step("STEP-A", issues(), "fetch_issues"),
                                  _step("STEP-B", builds(), "fetch_builds")), endpoint)
    conv = split_conversation(doc, endpoint, 4)
    feats = [FeatureCache().features(conv, u, endpoint, "test-model") for u in conv.units]
    rendered = [p for p, f in enumerate(feats) if f.rendered]
    assert len(rendered) >= 2
    for p in rendered:
        assert "headroom_retrieve" not in feats[p].identifiers
        assert feats[p].rendered[0][1] not in feats[p].identifiers
        assert not {"headroom", "retrieve", "hash"} & set(feats[p].profile.split())
    older = rendered[0]
    assert reference_scores([older], feats) == [0.0]
