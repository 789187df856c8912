"""Retrieval end to end: a real `mitmdump -s addons/headroom.py` in front of a fake provider
scripted to call headroom_retrieve. The originals are put in the proxy's on-disk CCR store, as
an earlier compressed turn would have left them; the requests carry the markers."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))

from fake_provider import FakeProvider, Reply  # noqa: E402
from headroom_core.ccr import CCRStore, marker_hash  # noqa: E402
from headroom_core.compression.markers import make_marker  # noqa: E402
from headroom_core.storage.disk import DiskStorage  # noqa: E402
from headroom_core.tenancy import tenant_of  # noqa: E402
from proxy_runner import headroom_proxy, mitmdump, wait_for_addons  # noqa: E402
from retrieval_clients import read_anthropic, read_chat, read_responses  # noqa: E402
from retrieval_streams import (TOOL, a_retrieve, anthropic_body, anthropic_events,  # noqa: E402
                               chat_body, chat_events, responses_body, responses_events,
                               responses_items)

pytestmark = pytest.mark.e2e

KEY = "sk-test-owner"
ORIGINAL = "\n".join(f"2024-05-01 12:00:{i % 60:02d} INFO request {i} ok" for i in range(400))
ORIGINAL += "\n2024-05-01 12:07:00 ERROR NEEDLE-42 disk full on /var\n"
A, C, R = "/v1/messages", "/v1/chat/completions", "/v1/responses"


@pytest.fixture(scope="module")
def provider():
    with FakeProvider() as p:
        yield p


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="module")
def digest(data_dir):
    store = CCRStore(DiskStorage(data_dir / "ccr"))
    full = store.put(tenant_of({"x-api-key": KEY}), ORIGINAL, kind="log", tool_name="bash")
    store.storage.close()
    return marker_hash(full)


@pytest.fixture(scope="module", params=["mitmdump", "headroom"])
def proxy(request, provider, data_dir, digest, tmp_path_factory):
    """`mitmdump -s addons/headroom.py` and `headroom proxy`, sharing the data directory."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "mitmdump":
        proc = mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir",
                        sets={"headroom_data_dir": str(data_dir), "headroom_cache": "false"},
                        openai_prefix="/openai")
    else:
        proc = headroom_proxy(provider.url, tmp / "proxy.log", data_dir, ["--no-cache"],
                              openai_prefix="/openai")
    wait_for_addons(proc.url)
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy, provider):
    provider.reset()
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=30) as c:
        yield c


def history(path: str, digest: str, stream: bool) -> dict:
    marker = make_marker("399 of 401 lines omitted — errors kept", digest)
    output = "2024-05-01 12:00:00 INFO request 0 ok\n" + marker
    if path == A:
        return {"model": "claude-test", "max_tokens": 200, "stream": stream, "messages": [
            {"role": "user", "content": "why did the job fail?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": "bash",
                                               "input": {"cmd": "cat job.log"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0",
                                          "content": output}]}],
            "tools": [{"name": "bash", "input_schema": {"type": "object"}}]}
    if path == C:
        doc = {"model": "gpt-test", "stream": stream, "messages": [
            {"role": "user", "content": "why did the job fail?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_0", "type": "function",
                 "function": {"name": "bash", "arguments": "{\"cmd\": \"cat job.log\"}"}}]},
            {"role": "tool", "tool_call_id": "call_0", "content": output}],
            "tools": [{"type": "function", "function": {"name": "bash", "parameters": {}}}]}
        if stream:
            doc["stream_options"] = {"include_usage": True}
        return doc
    return {"model": "gpt-test", "stream": stream, "store": False, "input": [
        {"role": "user", "content": "why did the job fail?"},
        {"type": "function_call", "call_id": "call_0", "name": "bash", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_0", "output": output}],
        "tools": [{"type": "function", "name": "bash", "parameters": {}}]}


def round_reply(path: str, stream: bool, calls: list[tuple[str, str, dict]], text: str,
                tag: str, delay: float = 0.0) -> Reply:
    """One provider round in the dialect of `path`."""
    if path == A:
        blocks = ([{"type": "text", "text": text}] if text else []) + [
            {"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in calls]
        stop = "tool_use" if calls else "end_turn"
        if stream:
            return Reply(events=anthropic_events(blocks, stop, f"msg_{tag}", 100, 10), event_delay=delay)
        return Reply(body=json.dumps(anthropic_body(blocks, stop, f"msg_{tag}", 100, 10)).encode())
    if path == C:
        finish = "tool_calls" if calls else "stop"
        if stream:
            return Reply(events=chat_events(text, calls, finish, f"chatcmpl-{tag}", 100, 10),
                         event_delay=delay)
        return Reply(body=json.dumps(chat_body(text or None, calls, finish, f"chatcmpl-{tag}",
                                               100, 10)).encode())
    items = responses_items(text, calls, tag)
    if stream:
        return Reply(events=responses_events(items, f"resp_{tag}", 100, 10), event_delay=delay)
    return Reply(body=json.dumps(responses_body(items, f"resp_{tag}", 100, 10)).encode())


def post(client: httpx.Client, path: str, doc: dict, key: str = KEY) -> tuple[bytes, float | None]:
    """The raw response body and when its first bytes arrived."""
    headers = {"content-type": "application/json"}
    headers.update({"x-api-key": key} if path == A else {"authorization": f"Bearer {key}"})
    first = None
    raw = b""
    with client.stream("POST", path, content=json.dumps(doc).encode(), headers=headers) as resp:
        assert resp.status_code == 200, resp.read()
        for chunk in resp.iter_raw():
            first = first or time.monotonic()
            raw += chunk
    return raw, first


def read(path: str, raw: bytes, stream: bool) -> dict:
    if stream:
        return {A: read_anthropic, C: read_chat, R: read_responses}[path](raw)
    assert TOOL.encode() not in raw
    return json.loads(raw)


def texts(path: str, msg: dict, stream: bool) -> str:
    if path == A:
        return " ".join(b.get("text", "") for b in msg["content"])
    if path == C:
        return msg["content"] if stream else msg["choices"][0]["message"]["content"]
    return " ".join(c["text"] for i in msg["output"] if i["type"] == "message" for c in i["content"])


def assert_valid_upstream(path: str, doc: dict) -> None:
    """Every call has its result right after it: the provider's conversation rules."""
    if path == A:
        for n, m in enumerate(doc["messages"]):
            ids = [b["id"] for b in m["content"] if isinstance(m["content"], list)
                   and b.get("type") == "tool_use"] if m["role"] == "assistant" else []
            if ids:
                nxt = doc["messages"][n + 1]["content"]
                assert sorted(b["tool_use_id"] for b in nxt if b["type"] == "tool_result") == sorted(ids)
    elif path == C:
        for n, m in enumerate(doc["messages"]):
            ids = [c["id"] for c in m.get("tool_calls") or []]
            if ids:
                answers = [x["tool_call_id"] for x in doc["messages"][n + 1:n + 1 + len(ids)]]
                assert sorted(answers) == sorted(ids)
    else:
        calls = [i["call_id"] for i in doc["input"] if i.get("type") == "function_call"]
        outputs = [i["call_id"] for i in doc["input"] if i.get("type") == "function_call_output"]
        assert sorted(calls) == sorted(outputs)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "buffered"])
@pytest.mark.parametrize("path", [A, C, R], ids=["anthropic", "chat", "responses"])
def test_retrieval_round_is_answered_and_hidden(client, provider, digest, path, stream):
    provider.script(round_reply(path, stream, [("call_r1", TOOL, {"hash": digest})], "Checking the log.",
                                "1", delay=0.02),
                    round_reply(path, stream, [], "The job failed: NEEDLE-42 disk full.", "2"))
    raw, first = post(client, path, history(path, digest, stream))
    msg = read(path, raw, stream)
    assert "NEEDLE-42 disk full." in texts(path, msg, stream)
    assert "Checking the log." in texts(path, msg, stream)
    assert len(provider.requests) == 2
    first_sent = json.loads(provider.requests[0].body)
    assert first_sent["tools"][-1].get("name", first_sent["tools"][-1].get("function", {}).get("name")) == TOOL
    continuation = provider.requests[1].body.decode()
    assert "NEEDLE-42 disk full on /var" in continuation, "the needle reaches the provider"
    for rec in provider.requests:
        assert_valid_upstream(path, json.loads(rec.body))
        assert not any(k.startswith("x-headroom") for k in rec.header_names())
    if stream:
        assert first < provider.requests[1].received_at, "first bytes before the provider finished"
    usage = msg["usage"]
    total_in = usage.get("input_tokens", usage.get("prompt_tokens"))
    assert total_in == 200, "usage summed over both rounds"


def test_two_rounds_then_answer(client, provider, digest):
    provider.script(round_reply(A, True, [("toolu_1", TOOL, {"hash": digest, "query": "ERROR"})], "", "1"),
                    round_reply(A, True, [("toolu_2", TOOL, {"hash": digest})], "", "2"),
                    round_reply(A, True, [], "Done: NEEDLE-42.", "3"))
    raw, _ = post(client, A, history(A, digest, True))
    msg = read_anthropic(raw)
    assert texts(A, msg, True).strip() == "Done: NEEDLE-42."
    assert len(provider.requests) == 3
    assert "NEEDLE-42" in json.loads(provider.requests[1].body)["messages"][-1]["content"][0]["content"]


def test_mixed_turn_carries_the_answer_into_the_next_request(client, provider, digest):
    provider.script(round_reply(C, True, [("call_r1", TOOL, {"hash": digest}),
                                          ("call_ls", "bash", {"cmd": "ls"})], "", "1"),
                    round_reply(C, True, [], "All clear.", "2"))
    doc = history(C, digest, True)
    raw, _ = post(client, C, doc)
    msg = read_chat(raw)
    assert [c["id"] for c in msg["tool_calls"]] == ["call_ls"] and msg["finish_reason"] == "tool_calls"
    assert len(provider.requests) == 1
    # The client runs its tool and sends the next turn, knowing nothing of our call.
    doc["messages"] += [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_ls", "type": "function", "function": {"name": "bash", "arguments": "{\"cmd\": \"ls\"}"}}]},
        {"role": "tool", "tool_call_id": "call_ls", "content": "job.log"}]
    raw, _ = post(client, C, doc)
    assert read_chat(raw)["content"] == "All clear."
    sent = json.loads(provider.requests[1].body)
    assert_valid_upstream(C, sent)
    assert [m.get("tool_call_id") for m in sent["messages"][-2:]] == ["call_ls", "call_r1"]
    assert "NEEDLE-42 disk full on /var" in sent["messages"][-1]["content"]


def test_another_tenants_hash_is_a_miss(client, provider, digest):
    provider.script(round_reply(A, False, [("toolu_1", TOOL, {"hash": digest})], "", "1"),
                    round_reply(A, False, [], "I cannot see it.", "2"))
    raw, _ = post(client, A, history(A, digest, False), key="sk-test-intruder")
    assert json.loads(raw)["content"][0]["text"] == "I cannot see it."
    result = json.loads(provider.requests[1].body)["messages"][-1]["content"][0]["content"]
    assert "not available" in result and "NEEDLE" not in result


def test_upstream_error_during_the_continuation(client, provider, digest):
    provider.script(round_reply(A, True, [("toolu_1", TOOL, {"hash": digest})], "Looking.", "1"),
                    Reply(status=529, body=b'{"type":"error","error":{"type":"overloaded_error",'
                                            b'"message":"Overloaded"}}'))
    raw, _ = post(client, A, history(A, digest, True))
    assert TOOL.encode() not in raw
    assert b"event: message_start" in raw and b"overloaded_error" in raw


def test_request_without_marker_is_not_relayed(client, provider):
    body = b'{"model":"claude-test","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}'
    resp = client.post(A, content=body, headers={"x-api-key": KEY})
    assert resp.status_code == 200 and provider.requests[-1].body == body
    assert "tools" not in json.loads(provider.requests[-1].body)


def test_rounds_are_counted_in_stats_and_metrics(client, provider, digest):
    provider.script(round_reply(A, False, [("toolu_1", TOOL, {"hash": digest})], "", "1"),
                    round_reply(A, False, [], "Counted.", "2"))
    before = client.get("/stats").json()["retrieval"]
    post(client, A, history(A, digest, False))
    after = client.get("/stats").json()["retrieval"]
    assert after["rounds"] == before["rounds"] + 1
    assert after["bytes"] == before["bytes"] + len(ORIGINAL.encode())
    metrics = client.get("/metrics").text
    assert "headroom_retrieval_rounds_total" in metrics and "headroom_retrieved_bytes_total" in metrics


def test_responses_chain_keeps_the_tool_and_gets_the_carried_output(client, provider, digest):
    provider.script(round_reply(R, True, [("call_r1", TOOL, {"hash": digest}),
                                          ("call_ls", "shell", {"cmd": "ls"})], "", "m1"),
                    round_reply(R, True, [], "Chained answer.", "m2"))
    first = history(R, digest, True)
    first.pop("store")  # stored responses: the client chains with previous_response_id
    raw, _ = post(client, R, first)
    response = read_responses(raw)
    assert [i["call_id"] for i in response["output"]] == ["call_ls"]
    chained = {"model": "gpt-test", "stream": True, "previous_response_id": response["id"],
               "input": [{"type": "function_call_output", "call_id": "call_ls", "output": "job.log"}],
               "tools": [{"type": "function", "name": "bash", "parameters": {}}]}
    raw, _ = post(client, R, chained)
    assert "Chained answer." in texts(R, read_responses(raw), True)
    sent = json.loads(provider.requests[1].body)
    assert sent["tools"][-1]["name"] == TOOL, "the tool stays for the whole chain"
    assert [i["call_id"] for i in sent["input"]] == ["call_ls", "call_r1"]
    assert "NEEDLE-42 disk full on /var" in sent["input"][1]["output"]


def test_the_proxys_own_compression_then_retrieval(client, provider):
    """No planted original: the proxy compresses a long log, the model asks for it back."""
    from headroom_core.compression.markers import find_markers

    log = "\n".join(f"2024-05-01 10:{i // 60:02d}:{i % 60:02d} INFO worker-{i % 7} processed batch "
                    f"{i} in {20 + i % 13} ms" for i in range(800))
    log += "\n2024-05-01 11:00:00 ERROR worker-3 NEEDLE-314 checksum mismatch in batch 801\n"
    seen: list[str] = []

    def handler(rec):
        doc = json.loads(rec.body)
        if any(isinstance(m.get("content"), list) and any(b.get("tool_use_id") == "toolu_r"
                                                          for b in m["content"]) for m in doc["messages"]):
            return round_reply(A, True, [], "It was NEEDLE-314.", "2")
        hashes = find_markers(rec.body.decode())
        seen.extend(hashes)
        return round_reply(A, True, [("toolu_r", TOOL, {"hash": hashes[0]})], "", "1")

    provider.handler = handler
    doc = {"model": "claude-test", "max_tokens": 200, "stream": True, "messages": [
        {"role": "user", "content": "why did the batch job fail?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_0", "name": "bash",
                                           "input": {"command": "journalctl -u batch-worker"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": log}]}],
        "tools": [{"name": "bash", "input_schema": {"type": "object"}}]}
    raw, _ = post(client, A, doc)
    assert texts(A, read_anthropic(raw), True) == "It was NEEDLE-314."
    assert seen, "the forwarded request carried a marker"
    first, second = (r.body.decode() for r in provider.requests)
    assert len(first) < len(json.dumps(doc)), "the log went out compressed"
    line = log.splitlines()[197]  # an ordinary line, the kind compression leaves out
    assert line not in first
    result = json.loads(second)["messages"][-1]["content"][0]["content"]
    assert result == log, "the whole original came back"
