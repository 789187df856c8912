"""fit_request on 300-message agent conversations over the window, in each wire format."""

from __future__ import annotations

import copy
import json
import math

import pytest

import convgen
from fitcheck import check_valid, conversation, dump, plain_text
from headroom_core import tokens
from headroom_core.ccr import CCRStore
from headroom_core.compression.markers import RETRIEVE_TOOL, find_markers
from headroom_core.fitting.manager import ContextFitter, FitConfig
from headroom_core.fitting.scoring import ScoringConfig
from headroom_core.fitting.windows import ModelWindows
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request

ERROR_ROUND, TALK_ROUND = 20, 21
TENANT = "tenant-a"


def script_300() -> convgen.Script:
    base = convgen.agent_script(150, seed=11, chat_every=0)
    rounds = list(base.rounds)
    rounds[ERROR_ROUND] = convgen.Round(
        "tool", "Running the header tests.",
        convgen.traceback_output("test_fold_continuation", "src/http/header_block.py"),
        "run_tests", {"path": "tests/test_headers.py"}, is_error=True)
    rounds[TALK_ROUND] = convgen.Round("chat", "Shall I keep going?", "sure, keep going (small talk)")
    return base.with_rounds(rounds)


def config_for(doc: dict, endpoint: Endpoint, share: float = 0.7, **kw) -> FitConfig:
    """A window that holds `share` of the conversation (model names are unknown: the default)."""
    total = tokens.count_request(doc, endpoint)
    scoring = kw.pop("scoring", ScoringConfig(semantic=False))
    return FitConfig(windows=ModelWindows(default_window=int(total * share)), scoring=scoring, **kw)


def fit(doc: dict, endpoint: Endpoint, config: FitConfig, *, fitter=None, ccr=None, state=None, **kw):
    fitter = fitter or ContextFitter()
    ccr = ccr or CCRStore(MemoryStorage())
    report = fitter.fit(parse_request(doc, endpoint), tenant=TENANT, ccr=ccr,
                        state_storage=state or MemoryStorage(), config=config, **kw)
    return report, ccr


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_300_messages_fit_and_stay_valid(endpoint):
    doc = convgen.render(endpoint, script_300(), model="test-model")
    original = copy.deepcopy(doc)
    assert len(conversation(doc, endpoint)) >= 300
    config = config_for(doc, endpoint)
    report, ccr = fit(doc, endpoint, config)

    assert report.fitted and report.fits and report.newly_dropped > 0
    window = config.windows.window_for("test-model")
    assert math.ceil(report.tokens_after) + report.reserve <= window
    # The report's count is the whole-request count of what is sent (within join separators).
    assert abs(tokens.count_request(doc, endpoint) - report.tokens_after) <= report.dropped_units + 50
    assert report.tokens_before == pytest.approx(tokens.count_request(original, endpoint), abs=400)
    check_valid(doc, endpoint)

    sent, before = conversation(doc, endpoint), conversation(original, endpoint)
    # Protected: system prompt, first user message, the last 4 turns (8 messages here).
    for key in ("system", "instructions", "tools"):
        assert doc.get(key) == original.get(key)
    first_user = next(m for m in before if m.get("role") == "user")
    assert any(dump(m) == dump(first_user) for m in sent[:3])
    assert [dump(m) for m in sent[-8:]] == [dump(m) for m in before[-8:]]

    # An error-bearing unit outlives the small talk of the same age.
    text = plain_text(doc, endpoint)
    assert "ValueError: not enough values to unpack" in text
    assert "small talk" not in text

    # One marker, naming the retrieve tool and a hash that returns the dropped messages.
    hashes = find_markers(text)
    assert hashes == [report.marker_hash]
    assert f"{RETRIEVE_TOOL}(hash=" in text
    entry = ccr.get(TENANT, report.marker_hash)
    assert entry is not None and "sure, keep going (small talk)" in entry.text
    kept = {dump(m) for m in sent}
    dropped_outputs = [r.output for r in script_300().rounds if r.output[:200] not in text]
    assert dropped_outputs and all(out[:200] in entry.text for out in dropped_outputs)
    assert sum(1 for m in before if dump(m) not in kept) == report.dropped_messages
    assert ccr.get("another-tenant", report.marker_hash) is None


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_a_request_that_fits_is_left_alone(endpoint):
    doc = convgen.render(endpoint, script_300(), model="test-model")
    original = copy.deepcopy(doc)
    report, _ = fit(doc, endpoint, config_for(doc, endpoint, share=1.2))
    assert not report.fitted and report.fits and report.reason == "fits"
    assert dump(doc) == dump(original)


def _dropped_rounds(doc: dict, endpoint: Endpoint) -> list[int]:
    text = plain_text(doc, endpoint)
    return [n for n, r in enumerate(script_300().rounds) if r.output[:120] not in text]


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_rolling_window_drops_oldest_first(endpoint):
    doc = convgen.render(endpoint, script_300(), model="test-model")
    report, _ = fit(doc, endpoint, config_for(doc, endpoint, intelligent=False))
    assert report.strategy == "rolling" and report.fits
    dropped = _dropped_rounds(doc, endpoint)
    assert ERROR_ROUND in dropped and TALK_ROUND in dropped  # no scoring: age alone decides
    assert dropped == list(range(len(dropped)))  # a prefix of the history
    check_valid(doc, endpoint)


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_position_only_scoring(endpoint):
    doc = convgen.render(endpoint, script_300(), model="test-model")
    config = config_for(doc, endpoint, scoring=ScoringConfig(intelligent=False))
    report, _ = fit(doc, endpoint, config)
    assert report.strategy == "position" and report.semantic_method == "off"
    dropped = _dropped_rounds(doc, endpoint)
    assert ERROR_ROUND in dropped and dropped == list(range(len(dropped)))


class FailingCCR:
    def put(self, tenant, original, *, kind, tool_name=None):
        raise RuntimeError("disk full")


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_nothing_is_dropped_when_the_original_cannot_be_stored(endpoint):
    doc = convgen.render(endpoint, script_300(), model="test-model")
    original = copy.deepcopy(doc)
    report, _ = fit(doc, endpoint, config_for(doc, endpoint), ccr=FailingCCR())
    assert not report.fitted and "CCR" in report.reason
    assert dump(doc) == dump(original)


def _claude_windows(tmp_path, window: int) -> ModelWindows:
    path = tmp_path / "limits.json"
    path.write_text(json.dumps({"claude-": window}))
    return ModelWindows(str(path))


def test_output_reserve_and_claude_scale_trigger_fitting(tmp_path):
    doc = convgen.to_anthropic(script_300(), model="claude-sonnet-4-5", max_tokens=8000)
    total = tokens.count_request(doc, Endpoint.ANTHROPIC_MESSAGES)
    # The conversation alone fits a window of total + 1000, but not with the 8000-token reserve.
    config = FitConfig(windows=_claude_windows(tmp_path, total + 1000),
                       scoring=ScoringConfig(semantic=False))
    report, _ = fit(doc, Endpoint.ANTHROPIC_MESSAGES, config)
    assert report.fitted and report.reserve == 8000
    assert math.ceil(report.tokens_after * 1.15) + 8000 <= total + 1000


def test_beta_header_window_avoids_fitting(tmp_path):
    doc = convgen.to_anthropic(script_300(), model="claude-sonnet-4-5")
    config = FitConfig(windows=_claude_windows(tmp_path, 20_000), scoring=ScoringConfig(semantic=False))
    report, _ = fit(copy.deepcopy(doc), Endpoint.ANTHROPIC_MESSAGES, config)
    assert report.fitted
    report, _ = fit(doc, Endpoint.ANTHROPIC_MESSAGES, config,
                    headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert not report.fitted and report.window == 1_000_000


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_compress_first_before_dropping(endpoint):
    from headroom_core.compression.engine import CompressionConfig, compress_request
    from headroom_core.fitting.compress_first import engine_compress_harder

    script = convgen.agent_script(60, seed=4, size=240, chat_every=0)
    compression = CompressionConfig(model="test-model")
    results = {}
    for compress_first in (False, True):
        ccr = CCRStore(MemoryStorage())
        doc = convgen.render(endpoint, script, model="test-model")
        req = parse_request(doc, endpoint)
        compress_request(req, tenant=TENANT, ccr=ccr, config=compression)  # the pipeline's step
        config = config_for(doc, endpoint, share=0.8, compress_first=compress_first)
        harder = engine_compress_harder(endpoint, tenant=TENANT, ccr=ccr, config=compression,
                                        model="test-model")
        report, _ = fit(doc, endpoint, config, ccr=ccr, compress_harder=harder)
        check_valid(doc, endpoint)
        results[compress_first] = (report, doc, ccr)
    plain, first = results[False][0], results[True][0]
    assert plain.compress_first_savings == 0 and first.compress_first_savings > 0
    assert first.fits and first.newly_dropped < plain.newly_dropped
    # Every marker in the harder renderings still names a stored original.
    doc, ccr = results[True][1], results[True][2]
    text = plain_text(doc, endpoint)
    for digest in find_markers(text):
        assert ccr.get(TENANT, digest) is not None


def test_config_from_settings(tmp_path):
    from headroom_core.settings import Settings

    limits = tmp_path / "limits.json"
    limits.write_text('{"test-model": 12345}')
    settings = Settings.resolve({"model_limits": str(limits), "default_context_window": 64000,
                                 "compress_first": False, "intelligent_context": False,
                                 "intelligent_scoring": False, "protect_last_turns": 2,
                                 "scoring_weights": "recency=1,error=0.5"}, environ={})
    config = FitConfig.from_settings(settings)
    assert config.windows.window_for("test-model-x") == 12345
    assert config.windows.window_for("unknown") == 64000
    assert (config.compress_first, config.intelligent, config.scoring.intelligent) == (False, False, False)
    assert config.protect_last_turns == 2
    assert dict(config.scoring.weights)["recency"] == 1.0 and dict(config.scoring.weights)["error"] == 0.5


def test_two_tenants_with_the_same_history_each_get_their_own_originals():
    from headroom_core.compression.engine import CompressionConfig, compress_request
    from headroom_core.fitting.compress_first import engine_compress_harder

    endpoint = Endpoint.OPENAI_CHAT
    script = convgen.agent_script(60, seed=4, size=240, chat_every=0)
    compression = CompressionConfig(model="test-model")
    fitter, ccr = ContextFitter(), CCRStore(MemoryStorage())  # one process, one store
    for tenant in ("tenant-a", "tenant-b"):
        doc = convgen.render(endpoint, script, model="test-model")
        compress_request(parse_request(doc, endpoint), tenant=tenant, ccr=ccr, config=compression)
        harder = engine_compress_harder(endpoint, tenant=tenant, ccr=ccr, config=compression,
                                        model="test-model")
        report = fitter.fit(parse_request(doc, endpoint), tenant=tenant, ccr=ccr,
                            state_storage=MemoryStorage(), compress_harder=harder,
                            config=config_for(doc, endpoint, share=0.8))
        assert report.compress_first_savings > 0
        for digest in find_markers(plain_text(doc, endpoint)):
            assert ccr.get(tenant, digest) is not None, f"{tenant} cannot retrieve {digest}"


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_tokens_hint_shortcut_never_skips_earlier_decisions(endpoint):
    doc = convgen.render(endpoint, script_300(), model="test-model")
    config = config_for(doc, endpoint)
    state, fitter = MemoryStorage(), ContextFitter()
    untouched = copy.deepcopy(doc)
    report, _ = fit(untouched, endpoint, config, fitter=fitter, state=state, tokens_hint=100)
    assert not report.fitted and report.reason == "fits"
    assert dump(untouched) == dump(doc)  # a (claimed) fitting request with no history: left alone

    first = copy.deepcopy(doc)
    fit(first, endpoint, config, fitter=fitter, state=state)  # drops, and remembers them
    again = copy.deepcopy(doc)
    report, _ = fit(again, endpoint, config, fitter=fitter, state=state, tokens_hint=100)
    assert report.fitted and report.sticky_reused and report.newly_dropped == 0
    assert dump(again) == dump(first)
