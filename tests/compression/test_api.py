"""The library call: `headroom_core.compress(messages, provider=..., model=...)`."""

from __future__ import annotations

import copy
import json

import pytest

import compression_samples as S
import headroom_core
from headroom_core.compression.markers import find_markers


def _chat(log: str) -> list[dict]:
    return [{"role": "user", "content": "why did the controller crash?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "run", "arguments": '{"cmd": "kubectl logs ctrl"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": log}]


def test_compress_returns_new_messages_and_leaves_input_untouched(ccr):
    log, must = S.klog_with_panic()
    messages = _chat(log)
    before = copy.deepcopy(messages)
    result = headroom_core.compress(messages, provider="openai", model="gpt-4o", ccr=ccr,
                                    system="You are an SRE assistant.")
    assert messages == before
    assert len(result.messages) == 3 and result.messages[0] == messages[0]
    assert result.tokens_after < result.tokens_before and result.tokens_saved > 0
    assert result.transforms[0].kind == "log"
    text = result.messages[2]["content"]
    assert all(m in text for m in must)
    (h,) = find_markers(text)
    assert headroom_core.retrieve(h, ccr=ccr) == log
    assert "panic" in headroom_core.retrieve(h, "panic nil pointer", ccr=ccr)
    assert headroom_core.retrieve(h, ccr=ccr, tenant="someone-else") is None


def test_anthropic_and_responses_providers():
    log, _ = S.nginx_access()
    anthropic = [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "content": log}]}]
    r = headroom_core.compress(anthropic, provider="anthropic", model="claude-sonnet-4-5", system="Be brief.")
    assert r.transforms and find_markers(r.messages[0]["content"][0]["content"])
    h = r.transforms[0].hash
    assert headroom_core.retrieve(h) == log  # the default in-process store
    responses = [{"type": "function_call_output", "call_id": "c", "output": log}]
    r = headroom_core.compress(responses, provider="openai-responses", model="gpt-4.1", min_tokens=100)
    assert r.transforms and isinstance(r.messages[0]["output"], str)


def test_options_and_errors():
    log, _ = S.klog_with_panic()
    with pytest.raises(ValueError):
        headroom_core.compress([], provider="gemini", model="x")
    with pytest.raises(ValueError):
        headroom_core.compress([], provider="openai", model="x", no_such_option=1)
    r = headroom_core.compress(_chat(log), provider="openai", model="gpt-4o", protect_tools=["run"])
    assert not r.transforms and r.tokens_before == r.tokens_after
    r = headroom_core.compress(_chat(log), provider="openai", model="gpt-4o", min_tokens=10**7)
    assert not r.transforms


def test_json_output_stays_json_through_the_library():
    runs, must = S.github_workflow_runs()
    r = headroom_core.compress(_chat(runs), provider="openai", model="gpt-4o")
    doc = json.loads(r.messages[2]["content"])
    assert doc["total_count"] == 60 and all(m in r.messages[2]["content"] for m in must)
