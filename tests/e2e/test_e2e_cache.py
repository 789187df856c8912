"""The response cache through a real proxy: a repeated request is answered without the provider,
a streamed hit replays a valid event stream, keys follow system and tools, only final answers are
stored, and `--no-cache` forwards everything."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Iterator

import httpx
import pytest

from fake_provider import (Reply, anthropic_events, anthropic_message, openai_chat,
                           openai_chat_events, openai_response, openai_response_events)
from proxy_runner import ProxyProcess, clean_env, headroom_proxy, mitmdump

pytestmark = pytest.mark.e2e

TEXT = ("Grüße — 日本語 ✓ ", "and \"quotes\"\n", "done.")  # pieces; non-ASCII and escapes


@pytest.fixture(scope="module")
def cached(provider, tmp_path_factory, confdir) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("cache")
    proc = mitmdump(provider.url, tmp / "proxy.log", confdir, sets={"headroom_cache": "true"})
    yield proc
    proc.stop()


@pytest.fixture
def client(cached) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=cached.url, trust_env=False, timeout=30) as c:
        yield c


def wait_recorded(client: httpx.Client, total: int, timeout: float = 10.0) -> dict:
    """/stats once `total` requests are accounted (cache fill and settlement come first)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = client.get("/stats").json()
        if stats["requests"]["total"] >= total or time.monotonic() > deadline:
            return stats
        time.sleep(0.02)


# --- request bodies and SSE parsing ----------------------------------------------------------

ENDPOINTS = {
    "anthropic": ("/v1/messages", {"x-api-key": "sk-ant-cache-test-000000000000"}),
    "chat": ("/v1/chat/completions", {"authorization": "Bearer sk-cache-test-0000000000000"}),
    "responses": ("/v1/responses", {"authorization": "Bearer sk-cache-test-0000000000000"}),
}


def body_for(kind: str, question: str, stream: bool = False, **extra) -> dict:
    if kind == "anthropic":
        doc = {"model": "claude-sonnet-4-5", "max_tokens": 256, "system": "Be brief.",
               "messages": [{"role": "user", "content": question}]}
    elif kind == "chat":
        doc = {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": question}]}
        if stream:
            doc["stream_options"] = {"include_usage": True}
    else:
        doc = {"model": "gpt-4o", "instructions": "Be brief.", "input": question}
    if stream:
        doc["stream"] = True
    doc.update(extra)
    return doc


def provider_reply(kind: str, stream: bool) -> Reply:
    text = "".join(TEXT)
    if kind == "anthropic":
        return Reply(events=anthropic_events(pieces=TEXT)) if stream else \
            Reply(body=json.dumps(anthropic_message(text=text)).encode())
    if kind == "chat":
        return Reply(events=openai_chat_events(pieces=TEXT)) if stream else \
            Reply(body=json.dumps(openai_chat(text=text)).encode())
    return Reply(events=openai_response_events(pieces=TEXT)) if stream else \
        Reply(body=json.dumps(openai_response(text=text)).encode())


def parse_sse(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name, data) per event; asserts the framing a client's parser relies on."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n"), "a stream ends with a blank line"
    events = []
    for block in text.strip("\n").split("\n\n"):
        name, data = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
        assert data, f"event without data: {block!r}"
        events.append((name, "\n".join(data)))
    return events


def streamed_text(kind: str, raw: bytes) -> str:
    """The answer's text from a stream, checking it is one complete message of its format."""
    events = parse_sse(raw)
    if kind == "anthropic":
        names = [n for n, _ in events]
        assert names[0] == "message_start" and names[-1] == "message_stop"
        assert names.count("message_start") == 1 and names.count("message_stop") == 1
        docs = [json.loads(d) for _, d in events]
        assert all(d["type"] == n for (n, _), d in zip(events, docs))
        assert [d["delta"]["stop_reason"] for d in docs if d["type"] == "message_delta"] == ["end_turn"]
        return "".join(d["delta"]["text"] for d in docs if d["type"] == "content_block_delta")
    if kind == "chat":
        assert events[-1][1] == "[DONE]" and [d for _, d in events].count("[DONE]") == 1
        docs = [json.loads(d) for _, d in events[:-1]]
        assert all(d["object"] == "chat.completion.chunk" for d in docs)
        assert [c["finish_reason"] for d in docs for c in d["choices"] if c["finish_reason"]] == ["stop"]
        return "".join(c["delta"].get("content") or "" for d in docs for c in d["choices"])
    docs = [json.loads(d) for _, d in events]
    assert all(d["type"] == n for (n, _), d in zip(events, docs))
    assert docs[0]["type"] == "response.created" and docs[-1]["type"] == "response.completed"
    assert [d["type"] for d in docs].count("response.completed") == 1
    final = docs[-1]["response"]["output"][0]["content"][0]["text"]
    deltas = "".join(d["delta"] for d in docs if d["type"] == "response.output_text.delta")
    assert deltas == final
    return deltas


def answer_text(kind: str, doc: dict) -> str:
    if kind == "anthropic":
        return doc["content"][0]["text"]
    if kind == "chat":
        return doc["choices"][0]["message"]["content"]
    return doc["output"][0]["content"][0]["text"]


def post(client: httpx.Client, kind: str, doc: dict, key: str | None = None) -> httpx.Response:
    path, headers = ENDPOINTS[kind]
    if key is not None:
        headers = {next(iter(headers)): key}
    return client.post(path, json=doc, headers=headers)


# --- tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(ENDPOINTS))
def test_identical_request_is_answered_from_the_cache(client, provider, kind):
    doc = body_for(kind, f"what is {uuid.uuid4()}?")
    provider.script(provider_reply(kind, stream=False))
    first = post(client, kind, doc)
    assert first.status_code == 200 and first.headers["x-headroom-cache"] == "miss"
    total = wait_recorded(client, 0)["requests"]["total"]
    second = post(client, kind, doc)
    assert second.status_code == 200 and second.headers["x-headroom-cache"] == "hit"
    assert len(provider.requests) == 1  # the hit never reached the provider
    assert second.json() == first.json()
    assert answer_text(kind, second.json()) == "".join(TEXT)
    assert second.headers["content-type"].startswith("application/json")
    stats = wait_recorded(client, total + 1)
    assert stats["cache"]["hit"] >= 1 and stats["response_cache"]["hits"] >= 1
    assert stats["response_cache"]["stored"] >= 1
    assert client.get("/health").json()["stats"]["response_cache"]["hits"] >= 1
    metrics = client.get("/metrics").text
    assert re.search(r'^headroom_cache_hits_total\{.*status="200"\} [1-9]', metrics, re.M)
    assert re.search(r'^headroom_cache_misses_total\{.*status="200"\} [1-9]', metrics, re.M)


@pytest.mark.parametrize("fill_stream,hit_stream", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("kind", list(ENDPOINTS))
def test_streamed_hit_replays_a_valid_stream(client, provider, kind, fill_stream, hit_stream):
    question = f"stream {uuid.uuid4()}"
    provider.script(provider_reply(kind, fill_stream))
    total = wait_recorded(client, 0)["requests"]["total"]
    first = post(client, kind, body_for(kind, question, stream=fill_stream))
    assert first.status_code == 200 and first.headers["x-headroom-cache"] == "miss"
    if fill_stream:
        assert streamed_text(kind, first.content) == "".join(TEXT)
    wait_recorded(client, total + 1)
    second = post(client, kind, body_for(kind, question, stream=hit_stream))
    assert second.status_code == 200 and second.headers["x-headroom-cache"] == "hit"
    assert len(provider.requests) == 1
    if hit_stream:
        assert second.headers["content-type"].startswith("text/event-stream")
        assert streamed_text(kind, second.content) == "".join(TEXT)
    else:
        assert answer_text(kind, second.json()) == "".join(TEXT)


def test_keys_differ_with_system_tools_and_tenant(client, provider):
    question = [{"type": "text", "text": f"keys {uuid.uuid4()}"}]
    base = body_for("anthropic", "", messages=[{"role": "user", "content": question}])
    tool = {"name": "lookup", "description": "Look a word up.",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}
    variants = [base, {**base, "system": "Be verbose."}, {**base, "tools": [tool]},
                {**base, "tools": [{**tool, "description": "Look two words up."}]},
                {**base, "max_tokens": 255}]
    total = wait_recorded(client, 0)["requests"]["total"]
    for i, doc in enumerate(variants):
        resp = post(client, "anthropic", doc)
        assert resp.headers["x-headroom-cache"] == "miss", f"variant {i} was served another's answer"
        total = wait_recorded(client, total + 1)["requests"]["total"]
    other_key = post(client, "anthropic", base, key="sk-ant-another-tenant-1111111111")
    assert other_key.headers["x-headroom-cache"] == "miss"  # tenants never share answers
    wait_recorded(client, total + 1)
    assert len(provider.requests) == 6
    # What cannot change the answer is ignored: cache_control placement and the stream flag.
    marked = {**base, "messages": [{"role": "user", "content": [
        {**question[0], "cache_control": {"type": "ephemeral"}}]}]}
    assert post(client, "anthropic", marked).headers["x-headroom-cache"] == "hit"
    assert post(client, "anthropic", {**base, "stream": False}).headers["x-headroom-cache"] == "hit"
    assert post(client, "anthropic", variants[2]).headers["x-headroom-cache"] == "hit"
    assert len(provider.requests) == 6


def test_tool_use_answers_are_not_cached(client, provider):
    answer = anthropic_message()
    answer.update(stop_reason="tool_use", content=[{"type": "tool_use", "id": "toolu_1",
                                                    "name": "lookup", "input": {"q": "x"}}])
    provider.script(*[Reply(body=json.dumps(answer).encode())] * 2)
    doc = body_for("anthropic", f"tool {uuid.uuid4()}")
    total = wait_recorded(client, 0)["requests"]["total"]
    for i in range(2):
        resp = post(client, "anthropic", doc)
        assert resp.status_code == 200 and resp.headers["x-headroom-cache"] == "miss"
        assert resp.json()["stop_reason"] == "tool_use"
        wait_recorded(client, total + i + 1)
    assert len(provider.requests) == 2


@pytest.mark.parametrize("kind,status,error", [
    ("anthropic", 500, {"type": "error", "error": {"type": "api_error", "message": "boom"}}),
    ("chat", 400, {"error": {"message": "bad", "type": "invalid_request_error"}}),
    ("chat", 200, {"error": {"message": "odd 200 with an error", "type": "server_error"}}),
])
def test_error_answers_are_not_cached(client, provider, kind, status, error):
    provider.script(*[Reply(status=status, body=json.dumps(error).encode())] * 2)
    doc = body_for(kind, f"error {uuid.uuid4()}")
    total = wait_recorded(client, 0)["requests"]["total"]
    for i in range(2):
        resp = post(client, kind, doc)
        assert resp.status_code == status and resp.json() == error
        wait_recorded(client, total + i + 1)
    assert len(provider.requests) == 2


def test_a_stream_cut_short_is_not_cached(client, provider):
    events = anthropic_events(pieces=TEXT)[:-2]  # no message_delta, no message_stop
    provider.script(Reply(events=events), Reply(events=anthropic_events(pieces=TEXT)))
    doc = body_for("anthropic", f"cut {uuid.uuid4()}", stream=True)
    total = wait_recorded(client, 0)["requests"]["total"]
    post(client, "anthropic", doc)
    wait_recorded(client, total + 1)
    second = post(client, "anthropic", doc)
    assert second.headers["x-headroom-cache"] == "miss"
    assert streamed_text("anthropic", second.content) == "".join(TEXT)
    assert len(provider.requests) == 2


def test_bypass_header_skips_the_cache(client, provider):
    doc = body_for("chat", f"bypass {uuid.uuid4()}")
    total = wait_recorded(client, 0)["requests"]["total"]
    post(client, "chat", doc)
    wait_recorded(client, total + 1)
    resp = client.post("/v1/chat/completions", json=doc, headers={"x-headroom-bypass": "1"})
    assert resp.status_code == 200 and "x-headroom-cache" not in resp.headers
    assert len(provider.requests) == 2


@pytest.mark.parametrize("args,env,cached_answers", [
    (["--no-cache"], {"HEADROOM_CACHE": "true"}, False),  # the flag wins over the environment
    ([], {"HEADROOM_CACHE": "true"}, True),
])
def test_headroom_proxy_cache_switch(provider, tmp_path, args, env, cached_answers):
    proc = headroom_proxy(provider.url, tmp_path / "log", tmp_path / "data", args,
                          env=clean_env(**env))
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            doc = body_for("anthropic", "the same question")
            first = post(c, "anthropic", doc)
            wait_recorded(c, 1)
            second = post(c, "anthropic", doc)
            assert first.status_code == second.status_code == 200
            health = c.get("/health").json()
        if cached_answers:
            assert [first.headers["x-headroom-cache"], second.headers["x-headroom-cache"]] == ["miss", "hit"]
            assert len(provider.requests) == 1
            assert health["features"]["response_cache"].startswith("on")
        else:
            assert "x-headroom-cache" not in first.headers and "x-headroom-cache" not in second.headers
            assert len(provider.requests) == 2
            assert health["features"]["response_cache"] == "off"
    finally:
        proc.stop()
