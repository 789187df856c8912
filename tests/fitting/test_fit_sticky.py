"""Cache-safe fitting: over a 30-turn session past the window, the bytes sent before the newest
messages change only on turns where fitting had to decide something new."""

from __future__ import annotations

import pytest

import convgen
from fitcheck import check_valid, conversation, dump, plain_text
from headroom_core import tokens
from headroom_core.ccr import CCRStore
from headroom_core.compression.engine import CompressionConfig, compress_request
from headroom_core.compression.markers import find_markers
from headroom_core.fitting.compress_first import engine_compress_harder
from headroom_core.fitting.manager import ContextFitter, FitConfig
from headroom_core.fitting.scoring import ScoringConfig
from headroom_core.fitting.windows import ModelWindows
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.request import parse_request

TENANT = "tenant-s"
BASE, TURNS = 90, 30


def run_session(endpoint, *, compress_first: bool, intelligent: bool = True):
    script = convgen.agent_script(BASE + TURNS, seed=5, size=80, chat_every=5)
    compression = CompressionConfig(model="test-model")
    state, ccr = MemoryStorage(), CCRStore(MemoryStorage())
    start = convgen.render(endpoint, script.with_rounds(script.rounds[:BASE]), model="test-model")
    compress_request(parse_request(start, endpoint), tenant=TENANT, ccr=ccr, config=compression)
    window = int(tokens.count_request(start, endpoint) * 0.9)  # already past the window at turn 0
    config = FitConfig(windows=ModelWindows(default_window=window), compress_first=compress_first,
                       intelligent=intelligent, scoring=ScoringConfig(semantic=False))
    fitter = ContextFitter()
    turns = []
    for t in range(TURNS):
        if t == TURNS // 2:
            fitter = ContextFitter()  # a restart: in-process caches gone, decisions in storage
        doc = convgen.render(endpoint, script.with_rounds(script.rounds[:BASE + t + 1]), model="test-model")
        req = parse_request(doc, endpoint)
        compress_request(req, tenant=TENANT, ccr=ccr, config=compression)  # the pipeline's step before
        harder = engine_compress_harder(endpoint, tenant=TENANT, ccr=ccr, config=compression,
                                        model="test-model")
        report = fitter.fit(req, tenant=TENANT, ccr=ccr, state_storage=state, config=config,
                            compress_harder=harder)
        turns.append((report, [dump(m) for m in conversation(doc, endpoint)], doc))
    return turns, ccr


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
@pytest.mark.parametrize("compress_first", [True, False], ids=["compress-first", "drop-only"])
def test_prefix_changes_only_when_fitting_acts(endpoint, compress_first):
    turns, ccr = run_session(endpoint, compress_first=compress_first)
    acted = [t for t, (report, _, _) in enumerate(turns) if report.reason == "fitted"]
    assert acted and acted[0] == 0  # the session starts past the window
    assert len(acted) <= TURNS // 4, f"fitting acted on turns {acted}"
    for t, (report, sent, doc) in enumerate(turns):
        assert report.fitted and report.fits
        check_valid(doc, endpoint)
        assert len(find_markers(plain_text(doc, endpoint))) >= 1
        if t and t not in acted:
            previous = turns[t - 1][1]
            assert sent[:len(previous)] == previous, f"turn {t} rewrote earlier messages"
            assert report.sticky_reused and report.newly_dropped == 0
    if compress_first:
        assert any(r.compress_first_savings > 0 for r, _, _ in turns)
    last = turns[-1][0]
    entry = ccr.get(TENANT, last.marker_hash)
    assert entry is not None and entry.kind == "context"


def test_decisions_survive_a_second_instance_sharing_storage():
    """Two proxy instances behind a load balancer send the same bytes for the same turn."""
    endpoint = convgen.FORMATS[0]
    script = convgen.agent_script(80, seed=9, chat_every=4)
    doc = convgen.render(endpoint, script, model="test-model")
    config = FitConfig(windows=ModelWindows(default_window=tokens.count_request(doc, endpoint) // 2),
                       scoring=ScoringConfig(semantic=False))
    state, ccr = MemoryStorage(), CCRStore(MemoryStorage())
    sent = []
    for fitter in (ContextFitter(), ContextFitter()):
        body = convgen.render(endpoint, script, model="test-model")
        fitter.fit(parse_request(body, endpoint), tenant=TENANT, ccr=ccr, state_storage=state,
                   config=config)
        sent.append(dump(body))
    assert sent[0] == sent[1]
