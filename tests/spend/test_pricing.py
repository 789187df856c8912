"""Pricing: the built-in table, lookup rules, cost from usage, estimates, overrides."""

from __future__ import annotations

import json
import logging

import pytest

from headroom_core.spend.pricing import DEFAULT_OUTPUT_ESTIMATE, ModelPrice, Pricing, builtin_table
from headroom_core.usage import Usage

P = Pricing.load(None, (3.0, 15.0))


@pytest.mark.parametrize("model,entry", [
    ("claude-sonnet-4-5-20250929", "claude-sonnet-4-5"),
    ("claude-sonnet-4-20250514", "claude-sonnet-4"),
    ("claude-opus-4-1-20250805", "claude-opus-4-1"),
    ("claude-opus-4-20250514", "claude-opus-4"),
    ("claude-opus-4-5", "claude-opus-4-5"),
    ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ("claude-3-7-sonnet-20250219", "claude-3-7-sonnet"),
    ("claude-3-haiku-20240307", "claude-3-haiku"),
    ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),  # Vertex
    ("us.anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku"),  # Bedrock
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ("gpt-4.1", "gpt-4.1"),
    ("o3-mini-2025-01-31", "o3-mini"),
    ("o4-mini", "o4-mini"),
    ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
    ("gpt-5-2025-08-07", "gpt-5"),
    ("openai/gpt-5-nano", "gpt-5-nano"),
    ("GPT-4o", "gpt-4o"),
])
def test_lookup_exact_then_longest_prefix(model, entry):
    price, known = P.price(model)
    assert known and price == builtin_table()[entry]


@pytest.mark.parametrize("model", ["gpt-4omni", "claude-sonnet-45", "o10", "llama-3-70b", ""])
def test_prefix_must_end_at_a_word_boundary(model):
    assert P.price(model) == (P.default, False)


def test_published_list_prices():
    t = builtin_table()
    assert t["claude-sonnet-4-5"] == ModelPrice(3, 15, 0.3, 3.75)
    assert t["claude-opus-4-5"] == ModelPrice(5, 25, 0.5, 6.25)
    assert t["claude-3-5-haiku"] == ModelPrice(0.8, 4, 0.08, 1.0)
    assert t["gpt-4o"] == ModelPrice(2.5, 10, 1.25, 2.5)
    assert t["gpt-5"] == ModelPrice(1.25, 10, 0.125, 1.25)
    for name, p in t.items():  # cache reads never cost more than input, writes never less
        assert p.cache_read <= p.input <= p.cache_write, name


def test_cost_splits_usage_by_kind():
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000, cache_read_tokens=2_000_000,
                  cache_write_tokens=400_000)
    usd, known = P.cost("claude-sonnet-4-5-20250929", usage)
    assert known and usd == pytest.approx(3.0 + 1.5 + 0.6 + 1.5)
    usd, _ = P.cost("gpt-4o", Usage(input_tokens=0, output_tokens=0, cache_read_tokens=1_000_000))
    assert usd == pytest.approx(1.25)


def test_unknown_model_uses_default_and_warns_once(caplog):
    pricing = Pricing.load(None, (2.0, 8.0))
    with caplog.at_level(logging.WARNING, logger="headroom_core.spend.pricing"):
        for _ in range(3):
            usd, known = pricing.cost("mystery-model", Usage(input_tokens=1_000_000, output_tokens=1_000_000))
    assert not known and usd == pytest.approx(10.0)
    assert sum("mystery-model" in r.getMessage() for r in caplog.records) == 1
    assert pricing.price("mystery-model")[0] == ModelPrice(2.0, 8.0, 0.2, 2.5)


def test_estimate_is_upper_leaning():
    # input at the dearer of input and cache write, output at max_tokens
    assert P.estimate("claude-sonnet-4-5", 1_000_000, 100_000) == pytest.approx(3.75 + 1.5)
    assert P.estimate("gpt-4o", 1_000_000, None) == pytest.approx(2.5 + DEFAULT_OUTPUT_ESTIMATE * 10e-6)
    assert P.estimate("gpt-4o", 0, 0) == 0.0


def test_pricing_file_overrides_and_adds(tmp_path):
    f = tmp_path / "prices.json"
    f.write_text(json.dumps({"models": {"gpt-4o": {"input": 1, "output": 2},
                                       "my-local-model": {"input": 0, "output": 0,
                                                          "cache_read": 0, "cache_write": 0}}}))
    p = Pricing.load(str(f), (3.0, 15.0))
    assert p.price("gpt-4o-2024-08-06") == (ModelPrice(1, 2, 0.1, 1.25), True)
    assert p.price("my-local-model") == (ModelPrice(0, 0, 0, 0), True)
    assert p.price("claude-sonnet-4-5")[1]  # built-ins remain


@pytest.mark.parametrize("text", ["not json", "[]", '{"models": {"x": {"input": "a", "output": 1}}}',
                                  '{"models": {"x": {"output": 1}}}'])
def test_bad_pricing_file_is_a_clear_error(tmp_path, text):
    f = tmp_path / "bad.json"
    f.write_text(text)
    with pytest.raises(ValueError, match="pricing"):
        Pricing.load(str(f), (3.0, 15.0))
