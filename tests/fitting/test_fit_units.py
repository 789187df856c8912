"""Cutting conversations into units: pairs kept together, protection, stable ids."""

from __future__ import annotations

import copy

import pytest

import convgen
from headroom_core.fitting.units import split_conversation
from headroom_core.wire.common import Endpoint

A, C, R = Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES


def _units(doc, endpoint, k=2):
    conv = split_conversation(doc, endpoint, k)
    assert conv is not None
    # Units tile the conversation exactly.
    assert [u.start for u in conv.units] == [0] + [u.end for u in conv.units[:-1]]
    assert conv.units[-1].end == len(conv.items)
    return conv


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_tool_calls_stay_with_their_results(endpoint):
    doc = convgen.render(endpoint, convgen.agent_script(20))
    conv = _units(doc, endpoint)
    for unit in conv.units:
        text = str(conv.items[unit.start:unit.end])
        for n in range(20):
            ids = {A: f"toolu_{n:04d}", C: f"call_{n:04d}", R: f"fc_{n:04d}"}[endpoint]
            # An id is either absent from the unit or present as call and result together.
            assert text.count(ids) in (0, 2), (ids, text[:200])


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_protection(endpoint):
    doc = convgen.render(endpoint, convgen.agent_script(20))
    conv = _units(doc, endpoint, k=3)
    reasons = [u.protected for u in conv.units]
    assert reasons[-3:] == ["recent"] * 3
    assert "first_user" in reasons
    if endpoint is C:
        assert reasons[0] == "system"
    assert reasons.count(None) == len(reasons) - 3 - 1 - (endpoint is C)


def test_cache_control_protects_and_does_not_change_the_id():
    doc = convgen.to_anthropic(convgen.agent_script(12))
    before = _units(doc, A)
    marked = copy.deepcopy(doc)
    marked["messages"][6]["content"][0]["cache_control"] = {"type": "ephemeral"}
    after = _units(marked, A)
    unit = next(u for u in after.units if u.start <= 6 < u.end)
    assert unit.protected == "cache_control"
    assert [u.uid for u in before.units] == [u.uid for u in after.units]


@pytest.mark.parametrize("endpoint", convgen.FORMATS)
def test_ids_are_stable_as_the_conversation_grows(endpoint):
    script = convgen.agent_script(30)
    short = _units(convgen.render(endpoint, script.with_rounds(script.rounds[:20])), endpoint)
    long = _units(convgen.render(endpoint, script), endpoint)
    settled = [u.uid for u in short.units[:-1]]  # the newest unit may still grow
    assert [u.uid for u in long.units[:len(settled)]] == settled
    assert short.anchor == long.anchor


def test_identical_units_get_distinct_ids():
    script = convgen.agent_script(2, chat_every=0)
    twice = script.with_rounds([convgen.chat_round(0)] * 4 + list(script.rounds))
    conv = _units(convgen.to_anthropic(twice), A)
    ids = [u.uid for u in conv.units]
    assert len(set(ids)) == len(ids)


def test_anthropic_parallel_calls_and_leading_user_run():
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "user", "content": "please look"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "a", "name": "x", "input": {}},
                                          {"type": "tool_use", "id": "b", "name": "y", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a", "content": "1"},
                                     {"type": "tool_result", "tool_use_id": "b", "content": "2",
                                      "is_error": True}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "thanks"},
    ]
    conv = _units({"messages": messages}, A, k=1)
    assert [(u.start, u.end, u.kind) for u in conv.units] == [(0, 2, "exchange"), (2, 4, "tool"),
                                                               (4, 6, "exchange")]
    tool = conv.units[1]
    assert [(r.tool_name, r.text, r.is_error) for r in tool.tool_results] == [("x", "1", False),
                                                                             ("y", "2", True)]


def test_responses_reasoning_stays_with_its_call_and_outputs_may_come_late():
    items = [
        {"role": "user", "content": "go"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "on it"}]},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c2", "output": "two"},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "ok"}]},
        {"role": "user", "content": "next"},
    ]
    conv = _units({"input": items}, R, k=1)
    # (user, assistant) exchange; reasoning + both calls + both outputs; assistant; user
    assert [(u.start, u.end) for u in conv.units] == [(0, 2), (2, 7), (7, 8), (8, 9)]
    assert {r.tool_name for r in conv.units[1].tool_results} == {"f", "g"}


def test_chat_legacy_function_message_stays_with_its_call():
    messages = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
        {"role": "function", "name": "f", "content": "result"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "more"},
    ]
    conv = _units({"messages": messages}, C, k=1)
    assert any(u.start <= 1 and u.end >= 3 for u in conv.units)


@pytest.mark.parametrize("doc,endpoint", [
    ({"input": "just a string"}, R),
    ({"input": [{"role": "user", "content": "x"}], "previous_response_id": "resp_1"}, R),
    ({"messages": []}, A),
    ({"messages": [{"role": "user", "content": "x"}]}, Endpoint.ANTHROPIC_COUNT_TOKENS),
])
def test_nothing_to_fit(doc, endpoint):
    assert split_conversation(doc, endpoint, 4) is None
