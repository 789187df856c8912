"""Model context windows: families, dated ids, the 1M beta header, overrides, output reserve."""

from __future__ import annotations

import json

import pytest

from headroom_core.fitting.windows import ModelWindows, bare_model_id, output_reserve
from headroom_core.jsonfmt import loads


@pytest.mark.parametrize("model,window", [
    ("claude-3-haiku-20240307", 200_000),
    ("claude-3-opus-20240229", 200_000),
    ("claude-3-5-sonnet-20241022", 200_000),
    ("claude-3-5-haiku-latest", 200_000),
    ("claude-3-7-sonnet-20250219", 200_000),
    ("claude-sonnet-4-20250514", 200_000),
    ("claude-opus-4-1-20250805", 200_000),
    ("claude-sonnet-4-5", 200_000),
    ("claude-haiku-4-5-20251001", 200_000),
    ("claude-opus-4-5", 200_000),
    ("gpt-4o", 128_000),
    ("gpt-4o-2024-08-06", 128_000),
    ("gpt-4o-mini-2024-07-18", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4.1-mini-2025-04-14", 1_047_576),
    ("gpt-4.1-nano", 1_047_576),
    ("o1", 200_000),
    ("o3-2025-04-16", 200_000),
    ("o4-mini", 200_000),
    ("gpt-5", 400_000),
    ("gpt-5-mini-2025-08-07", 400_000),
    ("gpt-5.1-codex", 400_000),
    ("gpt-4", 8_192),
    ("openai/gpt-4o", 128_000),
    ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", 200_000),
    ("claude-3-5-sonnet@20240620", 200_000),
])
def test_known_families(model, window):
    assert ModelWindows().window_for(model) == window


def test_unknown_models_use_the_default():
    assert ModelWindows(default_window=32_000).window_for("my-local-llama") == 32_000
    assert ModelWindows(default_window=32_000).window_for(None) == 32_000


@pytest.mark.parametrize("model,window", [
    ("claude-sonnet-4-20250514", 1_000_000),
    ("claude-sonnet-4-5-20250929", 1_000_000),
    ("claude-opus-4-1", 200_000),  # the beta is for Sonnet 4 / 4.5 only
    ("claude-3-5-haiku", 200_000),
])
def test_one_million_beta_header(model, window):
    headers = {"Anthropic-Beta": "prompt-caching-2024-07-31, context-1m-2025-08-07"}
    assert ModelWindows().window_for(model, headers) == window
    assert ModelWindows().window_for(model, {"anthropic-beta": "other"}) == 200_000


def test_claude_counts_are_scaled_openai_are_not():
    assert ModelWindows().limit_for("claude-sonnet-4-5").count_scale > 1.0
    assert ModelWindows().limit_for("gpt-4o").count_scale == 1.0


def test_override_file_flat_and_structured(tmp_path):
    flat = tmp_path / "flat.json"
    flat.write_text(json.dumps({"my-model": 50_000, "gpt-4o": 64_000}))
    w = ModelWindows(str(flat))
    assert w.window_for("my-model-v2") == 50_000
    assert w.window_for("gpt-4o-2024-08-06") == 64_000
    assert w.window_for("gpt-4o-mini") == 64_000  # an override wins over longer built-in prefixes
    assert w.window_for("gpt-4.1") == 1_047_576
    structured = tmp_path / "structured.json"
    structured.write_text(json.dumps({"windows": {"claude-": 100_000}, "count_scale": {"claude": 1.3}}))
    w = ModelWindows(str(structured))
    assert w.limit_for("claude-next-1").window == 100_000
    assert w.limit_for("claude-next-1").count_scale == 1.3


@pytest.mark.parametrize("content", ["not json", '{"m": -5}', '{"m": "big"}', "[1, 2]"])
def test_bad_override_file_is_a_clear_error(tmp_path, content):
    path = tmp_path / "limits.json"
    path.write_text(content)
    with pytest.raises(ValueError, match="--model-limits"):
        ModelWindows(str(path))


def test_bare_model_id():
    assert bare_model_id("US.Anthropic.claude-x") == "claude-x"
    assert bare_model_id("azure/gpt-4o") == "gpt-4o"


@pytest.mark.parametrize("body,reserve", [
    (b'{"max_tokens": 4096}', 4096),
    (b'{"max_completion_tokens": 1000}', 1000),
    (b'{"max_output_tokens": 2048.0}', 2048),
    (b'{"messages": []}', 0),
    (b'{"max_tokens": null}', 0),
])
def test_output_reserve(body, reserve):
    assert output_reserve(loads(body)) == reserve
