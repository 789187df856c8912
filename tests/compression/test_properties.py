"""Properties over arbitrary inputs: never an exception, never more tokens, JSON in → JSON out,
every ERROR needle kept inline."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from headroom_core.compression.engine import CompressionConfig, compress_output
from headroom_core.compression.markers import find_markers
from headroom_core.tokens import count_text

CFG = CompressionConfig(min_tokens=50, min_savings=0.0, budget_ms=None)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=30) | st.dictionaries(st.text(max_size=12), inner, max_size=8),
    max_leaves=400)

log_line = st.builds(
    lambda ts, lvl, word, n: f"2025-03-14T09:{ts // 60 % 60:02d}:{ts % 60:02d}Z {lvl} svc: {word} id={n}",
    st.integers(0, 3599), st.sampled_from(["INFO", "DEBUG", "INFO", "WARN"]),
    st.sampled_from(["request handled", "cache hit", "job done", "retrying"]), st.integers(0, 10**6))


def _check(text: str, ccr) -> str:
    result = compress_output(text, tenant="t", ccr=ccr, config=CFG, tool_name="tool")
    if result.text is None:
        return text
    assert result.tokens_after <= result.tokens_before
    assert count_text(result.text) <= count_text(text)
    for h in find_markers(result.text):
        assert ccr.get("t", h).text == text
    return result.text


@SETTINGS
@given(st.text(max_size=3000))
def test_any_text_never_raises_and_never_grows(ccr, text):
    _check(text, ccr)


@SETTINGS
@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80), min_size=20, max_size=400))
def test_any_lines_never_raise_and_never_grow(ccr, lines):
    _check("\n".join(lines), ccr)


@SETTINGS
@given(json_values)
def test_json_in_json_out(ccr, value):
    for text in (json.dumps(value), json.dumps(value, indent=2, ensure_ascii=False)):
        out = _check(text, ccr)
        json.loads(out)


@SETTINGS
@given(st.lists(st.fixed_dictionaries({"id": st.integers(0, 10**6), "state": st.sampled_from(["open", "closed"]),
                                       "score": st.floats(0, 1000), "title": st.text(max_size=30)}),
                min_size=10, max_size=300))
def test_record_arrays_stay_json(ccr, rows):
    out = _check(json.dumps(rows, separators=(",", ":")), ccr)
    assert isinstance(json.loads(out), list)


@SETTINGS
@given(st.lists(log_line, min_size=200, max_size=1500), st.lists(st.integers(0, 10**9), min_size=1, max_size=6),
       st.randoms(use_true_random=False))
def test_every_error_needle_line_is_kept(ccr, lines, needle_ids, rnd):
    needles = [f"2025-03-14T10:00:00Z ERROR payments: charge {n} failed: card declined ({k})"
               for k, n in enumerate(needle_ids)]
    text_lines = list(lines)
    for needle in needles:
        text_lines.insert(rnd.randrange(len(text_lines) + 1), needle)
    out = _check("\n".join(text_lines), ccr)
    for needle in needles:
        assert needle in out
