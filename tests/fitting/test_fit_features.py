"""The fast paths of unit features, BM25 and unit ids give exactly what their plain definitions give.

Each fast path (literal-first error signs, identifiers run by run, term counts of distinct
tokens, BM25 over pre-counted profiles, reference scores with set operations, canonical JSON
with memoised escapes) is checked against the one-line definition it replaces, on a table of
tricky texts and on generated ones; and scoring features are computed only when a policy ranks.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from itertools import islice

import pytest

import convgen
from headroom_core import bm25
from headroom_core.ccr import CCRStore
from headroom_core.fitting import canonical, features
from headroom_core.fitting.features import (STRONG_ERROR, WEAK_ERROR, IDENTIFIER, MAX_IDENTIFIERS,
                                            UnitFeatures, error_level, identifiers_of)
from headroom_core.fitting.manager import ContextFitter, FitConfig
from headroom_core.fitting.scoring import REFERENCE_MAX_SHARE, REFERENCES_FOR_FULL_SCORE, \
    ScoringConfig, reference_scores
from headroom_core.fitting.windows import ModelWindows
from headroom_core.jsonfmt import JsonNumber
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request

TRICKY = [
    "", "ok", "all good\n", "Traceback (most recent call last):\n  File x", "ValueError: bad",
    "  KeyError", "raise ValueError(x)", "MyException:", "Exceptional results", "panic: oh",
    "xpanic: no", "thread panicked at 'x'", "Segmentation fault (core dumped)", "FAILED",
    "NOTFAILED", "FAILED_X", "FAIL: test_x", "xFAIL", "FATAL error", "npm ERR! code 1",
    "error: linker", "error[E0425]: x", "xerror: y", "exit code 0", "exit code 1",
    "exited with status 12", "process exit status 3", "non-zero exit", "zsh: command not found",
    "No such file or directory", "Permission denied", "BUILD FAILURE", "AssertionError",
    "an error", "two errors and a failure", "failed failing failure", "ERROR ERROR ERROR",
    "Invalid input", "İnvalid", "ınvalid", "FAİLED", "errorſ", "ERRORS", "access DENIED",
    "terror", "errorless", "fail", "exceptions", "denied.", "_error_", "error_code",
    "src/a/b.py", "a/b", "./x.py", "foo_bar baz_qux_1", "fooBar FooBar", "deadbeef", "1234567",
    "abcdefa", "a1b2c3d", "x" * 300 + "/y", "é_x/ü.py ñandú_ok", "日本_語/ファイル.txt",
    "-a_b- .c_d. /e_f/", "https://example.com/a/b?c=d_e", "v1.2.3 a-b-c.py foo.bar.baz",
    "ABCDEFGH" * 250, "ABCD/EFGH" * 100, "x" * 2000 + "_y",  # long runs (quadratic for one regex)
]


def _random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    pieces = list("abcdefXYZ0123456789_./-: \n\t\"'()[]{},;=") + [
        "ı", "İ", "ſ", "K", "é", "日", "Error", "Exception", "error", "FAILED", "FAIL", "exit code 2",
        "failed", "denied", "invalid", "src/", ".py", "fooBar", "snake_case", "deadbeef", "\n  E: ",
        "\nerror: x", "İnvalid"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randrange(0, 80))) for _ in range(n)]


SAMPLES = TRICKY + _random_texts(3000, seed=5)


def reference_error_level(text: str, flagged: bool = False) -> float:
    if flagged or STRONG_ERROR.search(text):
        return 1.0
    weak = len(list(islice(WEAK_ERROR.finditer(text), 3)))
    return 0.5 if weak >= 3 else 0.25 if weak else 0.0


def reference_identifiers(text: str) -> frozenset[str]:
    found: dict[str, None] = {}
    for m in IDENTIFIER.finditer(text):
        ident = m.group(0).strip(".-/")
        if len(ident) < 5 or (features._HEX_ONLY.fullmatch(ident) and (ident.isdigit() or ident.isalpha())):
            continue
        found.setdefault(ident, None)
        if len(found) >= MAX_IDENTIFIERS:
            break
    return frozenset(found)


def test_strong_signs_are_one_pattern_sign_by_sign():
    for text in SAMPLES:
        assert error_level(text) == reference_error_level(text), text
    assert error_level("all good", flagged=True) == 1.0
    assert error_level("İnvalid") == 0.25 and error_level("ınvalid ıNVALID İnvalid") == 0.5


def test_identifiers_run_by_run_match_the_whole_text_scan():
    for text in SAMPLES:
        assert identifiers_of(text) == reference_identifiers(text), text
    many = " ".join(f"name_{i}" for i in range(200))
    assert identifiers_of(many) == reference_identifiers(many)
    assert len(identifiers_of(many)) == MAX_IDENTIFIERS
    # A long run without "/" never reaches the path pattern (it took seconds at 20k characters).
    assert identifiers_of("ABCDEFGH" * 50_000 + " src/app_main.py") == frozenset({"src/app_main.py"})


def test_term_counts_are_the_token_stream_counted_in_order():
    for text in SAMPLES:
        expected = Counter(bm25.tokenize(text))
        got = bm25.term_counts(text)
        assert list(got.items()) == list(expected.items()), text


def test_rank_counted_scores_as_rank_does():
    docs = [features.term_profile(t) for t in SAMPLES[:600]] + SAMPLES[:300]
    counted = [bm25.CountedDoc(d) for d in docs]
    for query in SAMPLES[:600:23] + ["src/a.py error", "", "zzz"]:
        expected = bm25.rank(docs, query, limit=len(docs))
        assert bm25.rank_counted(counted, query, limit=len(docs)) == expected
        assert bm25.rank_counted(counted, query, limit=7) == expected[:7]


def test_reference_scores_match_their_definition():
    rng = random.Random(3)
    names = [f"src/mod_{i}.py" for i in range(40)]
    feats = [UnitFeatures("", 1, 0.0, frozenset(rng.sample(names, rng.randrange(0, 6))), (), "")
             for _ in range(80)]
    candidates = list(range(0, 76, 2))
    common = max(3, int(len(feats) * REFERENCE_MAX_SHARE))
    expected = []
    for pos in candidates:
        later = set().union(*(f.identifiers for f in feats[pos + 1:]))
        hits = sum(1 for i in feats[pos].identifiers
                   if i in later and sum(i in f.identifiers for f in feats) <= common)
        expected.append(min(1.0, hits / REFERENCES_FOR_FULL_SCORE))
    assert reference_scores(candidates, feats) == expected


@pytest.mark.parametrize("value", [
    [{"role": "user", "content": "x\"y\\z\n\té日\u2028\ud800" * 60}],
    [{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {"n": 1.5, "i": -3,
                                                                                 "b": False, "z": None}}]}],
    {"n": JsonNumber("1.0"), JsonNumber("2"): [float("inf"), float("nan"), 10**30], 3: "é" * 400},
    {"s": "plain", "o": frozenset(), "t": (1, "two")},
])
def test_canonical_json_is_json_dumps(value):
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    assert canonical.dumps(value) == expected
    assert canonical.dumps(json.loads(json.dumps(value, default=str))) == \
        json.dumps(json.loads(json.dumps(value, default=str)), ensure_ascii=False,
                   separators=(",", ":"), default=str)
    assert canonical.dumps(value) == expected  # long strings now come from the memo


def test_canonical_memo_is_bounded(monkeypatch):
    monkeypatch.setattr(canonical, "MEMO_MAX_CHARS", 8000)
    canonical.clear_memo()
    texts = [f"{i:04d}" + "x" * 996 for i in range(20)]
    for text in texts:
        assert canonical.dumps([text]) == json.dumps([text])
    assert canonical._memo_chars <= 8000 and len(canonical._memo) <= 8
    assert texts[-1] in canonical._memo and texts[0] not in canonical._memo
    canonical.clear_memo()


def _fit(fitter: ContextFitter, doc: dict, config: FitConfig, state: MemoryStorage):
    return fitter.fit(parse_request(doc, Endpoint.ANTHROPIC_MESSAGES), tenant="t",
                      ccr=CCRStore(MemoryStorage()), state_storage=state, config=config)


def test_scoring_features_are_computed_only_when_a_policy_ranks(monkeypatch):
    calls: list[str] = []
    real = features.compute_features
    monkeypatch.setattr(features, "compute_features",
                        lambda conv, unit, *a, **kw: calls.append(unit.uid) or real(conv, unit, *a, **kw))
    script = convgen.agent_script(60, seed=2)
    doc = lambda rounds: convgen.to_anthropic(script.with_rounds(script.rounds[:rounds]),  # noqa: E731
                                              model="test-model")
    windows = ModelWindows(default_window=9000)
    rolling = FitConfig(windows=windows, intelligent=False, scoring=ScoringConfig(semantic=False))
    report = _fit(ContextFitter(), doc(50), rolling, MemoryStorage())
    assert report.fitted and report.dropped_units and calls == []

    scored = FitConfig(windows=windows, scoring=ScoringConfig(semantic=False))
    state, fitter = MemoryStorage(), ContextFitter()
    report = _fit(fitter, doc(50), scored, state)
    assert report.fitted and report.strategy == "intelligent" and calls
    calls.clear()
    # The next turn: the earlier drops are re-applied, and if that fits nothing is ranked.
    report = _fit(fitter, doc(51), scored, state)
    assert report.fitted and report.sticky_reused and report.newly_dropped == 0
    assert calls == []
