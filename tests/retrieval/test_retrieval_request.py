"""Request side: tool definitions, sticky injection, answers from the CCR store, carried exchanges."""

from __future__ import annotations

import copy
import json

import pytest

from headroom_core import jsonfmt
from headroom_core.ccr import CCRStore, marker_hash
from headroom_core.compression.markers import make_marker
from headroom_core.retrieval import anthropic, openai_chat, openai_responses
from headroom_core.retrieval.answers import RetrieveCall, answer_call, normalise_hash
from headroom_core.retrieval.conversation import (ConversationStore, conversation_key,
                                                  prepare_request)
from headroom_core.retrieval.tool import TOOL_NAME, append_tool, definition
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint

A, C, R = Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES
ORIGINAL = "\n".join(f"line {i}: ok" for i in range(200)) + "\nline 200: NEEDLE-42 failure\n"


@pytest.fixture
def ccr() -> CCRStore:
    return CCRStore(MemoryStorage())


def marked_request(endpoint: Endpoint, digest: str, tools: list | None = None) -> dict:
    marker = make_marker("198 of 201 lines omitted", digest)
    if endpoint is A:
        doc: dict = {"model": "claude-test", "max_tokens": 100, "system": "be brief",
                     "messages": [{"role": "user", "content": "run it"},
                                  {"role": "assistant", "content": [
                                      {"type": "tool_use", "id": "t1", "name": "bash", "input": {}}]},
                                  {"role": "user", "content": [
                                      {"type": "tool_result", "tool_use_id": "t1",
                                       "content": "line 0\n" + marker}]}]}
    elif endpoint is C:
        doc = {"model": "gpt-test", "messages": [
            {"role": "system", "content": "be brief"}, {"role": "user", "content": "run it"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "t1", "content": "line 0\n" + marker}]}
    else:
        doc = {"model": "gpt-test", "instructions": "be brief", "input": [
            {"role": "user", "content": "run it"},
            {"type": "function_call", "call_id": "t1", "name": "bash", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "t1", "output": "line 0\n" + marker}]}
    if tools is not None:
        doc["tools"] = tools
    return doc


# --- tool definitions ------------------------------------------------------------------------

def test_definitions_have_each_provider_shape():
    assert definition(A)["name"] == TOOL_NAME and "input_schema" in definition(A)
    assert definition(C)["function"]["name"] == TOOL_NAME
    assert definition(R)["name"] == TOOL_NAME and definition(R)["strict"] is False
    assert definition(A) == definition(A), "a constant: every turn carries the same bytes"


@pytest.mark.parametrize("endpoint", [A, C, R])
def test_append_goes_last_and_never_duplicates(endpoint):
    client_tool = {"name": "bash", "input_schema": {}} if endpoint is not C else {
        "type": "function", "function": {"name": "bash", "parameters": {}}}
    doc = {"tools": [client_tool]}
    assert append_tool(doc, endpoint)
    assert doc["tools"][0] == client_tool and len(doc["tools"]) == 2
    assert not append_tool(doc, endpoint)
    assert len(doc["tools"]) == 2


# --- answers ---------------------------------------------------------------------------------

def test_answer_whole_original_and_query(ccr):
    digest = marker_hash(ccr.put("t_a", ORIGINAL, kind="log"))
    whole = answer_call(ccr, "t_a", RetrieveCall("c1", json.dumps({"hash": digest})))
    assert whole.found and whole.text == ORIGINAL and whole.bytes == len(ORIGINAL.encode())
    part = answer_call(ccr, "t_a", RetrieveCall("c2", json.dumps({"hash": digest, "query": "NEEDLE"})))
    assert part.found and "NEEDLE-42" in part.text and len(part.text) < len(ORIGINAL)


@pytest.mark.parametrize("arguments", ['{"hash": "ffffffffffffffff"}', "not json", "{}", '{"hash": 3}'])
def test_misses_and_bad_arguments_become_plain_results(ccr, arguments):
    answer = answer_call(ccr, "t_a", RetrieveCall("c1", arguments))
    assert not answer.found and answer.bytes == 0
    assert "headroom_retrieve" in answer.text


def test_other_tenants_hash_is_a_miss_with_recovery_advice(ccr):
    digest = marker_hash(ccr.put("t_owner", ORIGINAL, kind="log"))
    answer = answer_call(ccr, "t_thief", RetrieveCall("c1", json.dumps({"hash": digest})))
    assert not answer.found and "NEEDLE" not in answer.text
    assert "run the tool" in answer.text and "read the file again" in answer.text


def test_hash_spelling_is_forgiven():
    assert normalise_hash(' hash="ABCDEF0123456789" ') == "abcdef0123456789"


# --- sticky injection ------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", [A, C, R])
def test_marker_brings_the_tool_and_plain_requests_get_no_tools_key(endpoint):
    plain = marked_request(endpoint, "0" * 16)
    text_key = "messages" if endpoint is not R else "input"
    plain[text_key] = plain[text_key][:1]
    prep = prepare_request(plain, endpoint, "t_a", None)
    assert not prep.tool and not prep.changed and "tools" not in plain
    doc = marked_request(endpoint, "0" * 16)
    prep = prepare_request(doc, endpoint, "t_a", None)
    assert prep.tool and prep.changed and doc["tools"] == [definition(endpoint)]


@pytest.mark.parametrize("endpoint", [A, C, R])
def test_injection_is_sticky_through_the_conversation_record(endpoint):
    store = ConversationStore(MemoryStorage())
    doc = marked_request(endpoint, "0" * 16)
    key = conversation_key(doc, endpoint, "t_a")
    assert prepare_request(doc, endpoint, "t_a", store, key).tool
    # Later turn of the same conversation where fitting dropped every marker:
    later = marked_request(endpoint, "0" * 16)
    text_key = "messages" if endpoint is not R else "input"
    later[text_key] = [m for m in later[text_key] if "headroom" not in json.dumps(m)]
    prep = prepare_request(later, endpoint, "t_a", store, key)
    assert prep.tool and later["tools"] == [definition(endpoint)]
    # Another tenant with the same prompts has its own record.
    other = copy.deepcopy(later)
    other.pop("tools")
    assert not prepare_request(other, endpoint, "t_b", store).tool


def test_client_tool_of_the_same_name_is_respected():
    doc = marked_request(A, "0" * 16, tools=[{"name": TOOL_NAME, "input_schema": {}}])
    prep = prepare_request(doc, A, "t_a", None)
    assert not prep.tool and len(doc["tools"]) == 1 and "own" in prep.note


@pytest.mark.parametrize("extra,why", [({"n": 2}, "n > 1"), ({"functions": []}, "functions")])
def test_chat_requests_retrieval_cannot_serve(extra, why):
    doc = {**marked_request(C, "0" * 16), **extra}
    prep = prepare_request(doc, C, "t_a", None)
    assert not prep.tool and "tools" not in doc and why in prep.note


def test_responses_chain_is_linked_by_response_id():
    store = ConversationStore(MemoryStorage())
    first = marked_request(R, "0" * 16)
    key = conversation_key(first, R, "t_a")
    prepare_request(first, R, "t_a", store, key)
    store.link_response("t_a", key, "resp_9")
    chained = {"model": "gpt-test", "previous_response_id": "resp_9",
               "input": [{"role": "user", "content": "and now?"}]}
    assert prepare_request(chained, R, "t_a", store).tool


# --- continuations ---------------------------------------------------------------------------

def test_anthropic_continuation_appends_turn_and_results(ccr):
    request = marked_request(A, "0" * 16, tools=[definition(A)])
    body = {"id": "m1", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                    {"type": "tool_use", "id": "r1", "name": TOOL_NAME,
                                     "input": {"hash": "0" * 16}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 5, "output_tokens": 2}}
    facts = anthropic.round_of_body(body)
    answers = [answer_call(ccr, "t_a", c) for c in facts.calls]
    doc = anthropic.continuation(request, facts, answers, last=False)
    assert doc["messages"][:3] == request["messages"]
    assert doc["messages"][3] == {"role": "assistant", "content": body["content"]}
    assert doc["messages"][4]["content"][0]["tool_use_id"] == "r1"
    assert "tool_choice" not in doc
    last = anthropic.continuation(request, facts, answers, last=True)
    assert last["tool_choice"] == {"type": "none"}


def test_responses_continuation_chains_or_replays():
    facts = openai_responses.round_of_body({"id": "resp_1", "status": "completed", "output": [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "xyz"},
        {"type": "function_call", "id": "fc_1", "call_id": "r1", "name": TOOL_NAME,
         "arguments": "{}"}]})
    answers = [answer_call(None, "t", c) for c in facts.calls]
    chained = openai_responses.continuation({"previous_response_id": "resp_0", "input": "x"},
                                            facts, answers, False)
    assert chained["previous_response_id"] == "resp_1"
    assert [i["type"] for i in chained["input"]] == ["function_call_output"]
    replay = openai_responses.continuation({"store": False, "input": "x"}, facts, answers, False)
    assert replay["input"][0] == {"role": "user", "content": "x"}
    assert [i.get("id") for i in replay["input"][1:3]] == [None, None], "store=false: no item ids"
    assert replay["input"][1]["encrypted_content"] == "xyz"


# --- carried exchanges (mixed turns) ---------------------------------------------------------

def _mixed_round(endpoint):
    if endpoint is A:
        return anthropic.round_of_body({"content": [
            {"type": "tool_use", "id": "real1", "name": "bash", "input": {}},
            {"type": "tool_use", "id": "r1", "name": TOOL_NAME, "input": {"hash": "0" * 16}}],
            "stop_reason": "tool_use"})
    if endpoint is C:
        return openai_chat.round_of_body({"choices": [{"message": {"role": "assistant", "content": None,
            "tool_calls": [{"id": "real1", "type": "function", "function": {"name": "bash", "arguments": "{}"}},
                           {"id": "r1", "type": "function",
                            "function": {"name": TOOL_NAME, "arguments": '{"hash":"0000000000000000"}'}}]},
            "finish_reason": "tool_calls"}]})
    return openai_responses.round_of_body({"id": "resp_1", "status": "completed", "output": [
        {"type": "function_call", "call_id": "real1", "name": "bash", "arguments": "{}"},
        {"type": "function_call", "call_id": "r1", "name": TOOL_NAME, "arguments": "{}"}]})


def _next_request(endpoint):
    """The client's next request after it got only the real call and ran it."""
    if endpoint is A:
        return {"messages": [{"role": "user", "content": "go"},
                             {"role": "assistant", "content": [
                                 {"type": "tool_use", "id": "real1", "name": "bash", "input": {}}]},
                             {"role": "user", "content": [
                                 {"type": "tool_result", "tool_use_id": "real1", "content": "done"},
                                 {"type": "text", "text": "continue"}]}]}
    if endpoint is C:
        return {"messages": [{"role": "user", "content": "go"},
                             {"role": "assistant", "content": None, "tool_calls": [
                                 {"id": "real1", "type": "function",
                                  "function": {"name": "bash", "arguments": "{}"}}]},
                             {"role": "tool", "tool_call_id": "real1", "content": "done"},
                             {"role": "user", "content": "continue"}]}
    return {"input": [{"role": "user", "content": "go"},
                      {"type": "function_call", "call_id": "real1", "name": "bash", "arguments": "{}"},
                      {"type": "function_call_output", "call_id": "real1", "output": "done"}]}


@pytest.mark.parametrize("endpoint", [A, C, R])
def test_carried_exchange_is_reinserted_deterministically(endpoint):
    module = {A: anthropic, C: openai_chat, R: openai_responses}[endpoint]
    facts = _mixed_round(endpoint)
    assert facts.real_calls == ("real1",)
    record = module.carry_record(facts, [answer_call(None, "t", c) for c in facts.calls])
    store = ConversationStore(MemoryStorage())
    store.add_carry("t_a", "conv:x", "real1", json.loads(json.dumps(record)))
    first, second = _next_request(endpoint), _next_request(endpoint)
    assert prepare_request(first, endpoint, "t_a", store, "conv:x").carried == 1
    assert prepare_request(second, endpoint, "t_a", store, "conv:x").carried == 1
    assert jsonfmt.dumps(first) == jsonfmt.dumps(second), "every turn renders it the same way"
    text = json.dumps(first)
    assert text.count('"r1"') == 2, "our call and its result, once each"
    if endpoint is A:
        assert [b["type"] for b in first["messages"][2]["content"]] == ["tool_result", "tool_result", "text"]
    if endpoint is C:
        assert [m["role"] for m in first["messages"]] == ["user", "assistant", "tool", "tool", "user"]
    if endpoint is R:
        assert [i.get("call_id") for i in first["input"][1:]] == ["real1", "r1", "real1", "r1"]
    # A second pass over an already re-inserted request changes nothing.
    again = copy.deepcopy(first)
    assert not module.reinsert(again, "real1", record) and again == first


def test_responses_chained_request_gets_only_the_output():
    facts = _mixed_round(R)
    record = openai_responses.carry_record(facts, [answer_call(None, "t", c) for c in facts.calls])
    doc = {"previous_response_id": "resp_1",
           "input": [{"type": "function_call_output", "call_id": "real1", "output": "done"}]}
    assert openai_responses.reinsert(doc, "real1", record)
    assert [i["call_id"] for i in doc["input"]] == ["real1", "r1"]


def test_client_that_has_not_answered_gets_nothing_inserted():
    facts = _mixed_round(A)
    record = anthropic.carry_record(facts, [answer_call(None, "t", c) for c in facts.calls])
    doc = _next_request(A)
    doc["messages"] = doc["messages"][:2]
    assert not anthropic.reinsert(doc, "real1", record)
