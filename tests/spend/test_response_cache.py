"""Response cache: what the key covers, what may be stored, bounds, and failing open."""

from __future__ import annotations

import copy

import pytest

from headroom_core.jsonfmt import loads
from headroom_core.spend.response_cache import (CachedResponse, ResponseCache, cache_key,
                                                cacheable_headers, is_cacheable)
from headroom_core.storage.base import StorageError
from headroom_core.storage.disk import DiskStorage
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint

import stream_samples as S

A, C, R = Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES

BASE = {
    "model": "claude-sonnet-4-5", "max_tokens": 1024, "temperature": 0.7,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
    "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}],
}


def _key(doc, tenant="t_a", endpoint=A):
    return cache_key(tenant, endpoint, doc)


def test_key_ignores_cache_control_and_stream_flags():
    moved = copy.deepcopy(BASE)
    del moved["system"][0]["cache_control"]
    del moved["messages"][0]["content"][0]["cache_control"]
    moved["tools"][0]["cache_control"] = {"type": "ephemeral"}
    moved.update(stream=True, stream_options={"include_usage": True})
    assert _key(moved) == _key(BASE)
    reordered = dict(reversed(list(BASE.items())))
    assert _key(reordered) == _key(BASE)


@pytest.mark.parametrize("change", [
    lambda d: d["system"][0].update(text="You are verbose."),
    lambda d: d["tools"][0].update(description="Weather forecast"),
    lambda d: d.update(tools=[]),
    lambda d: d.update(tool_choice={"type": "any"}),
    lambda d: d.update(temperature=0.2),
    lambda d: d.update(max_tokens=2048),
    lambda d: d.update(thinking={"type": "enabled", "budget_tokens": 2000}),
    lambda d: d.update(model="claude-opus-4-5"),
    lambda d: d["messages"][0]["content"][0].update(text="hello"),
    lambda d: d.update(metadata={"user_id": "u1"}),
])
def test_key_covers_everything_that_can_change_the_answer(change):
    doc = copy.deepcopy(BASE)
    change(doc)
    assert _key(doc) != _key(BASE)


def test_key_is_per_tenant_and_endpoint():
    assert _key(BASE, tenant="t_b") != _key(BASE)
    assert _key(BASE, endpoint=C) != _key(BASE)
    assert _key(BASE, endpoint="anthropic.messages") == _key(BASE)


def test_key_reads_faithful_json_numbers_as_numbers():
    a = loads(b'{"model":"gpt-4o","temperature":1.0,"top_p":0.50,"messages":[]}')
    b = loads(b'{"model":"gpt-4o","temperature":1,"top_p":0.5,"messages":[]}')
    assert cache_key("t", C, a) == cache_key("t", C, b)
    c = loads(b'{"model":"gpt-4o","temperature":1.5,"top_p":0.5,"messages":[]}')
    assert cache_key("t", C, c) != cache_key("t", C, a)


@pytest.mark.parametrize("endpoint,doc,expected", [
    (A, S.ANTHROPIC_TEXT, True),
    (A, S.ANTHROPIC_TOOLS_AND_THINKING, False),
    (A, {**S.ANTHROPIC_TEXT, "stop_reason": "max_tokens"}, True),
    (A, {**S.ANTHROPIC_TEXT, "stop_reason": "refusal"}, False),
    (A, {**S.ANTHROPIC_TEXT, "stop_reason": "pause_turn"}, False),
    (A, {"type": "error", "error": {"type": "overloaded_error", "message": "x"}}, False),
    (C, S.CHAT_TEXT, True),
    (C, S.CHAT_TOOL_CALLS_TWO_CHOICES, False),
    (C, {**S.CHAT_TEXT, "choices": [{**S.CHAT_TEXT["choices"][0], "finish_reason": "content_filter"}]}, False),
    (R, {**S.RESPONSES, "output": S.RESPONSES["output"][:2]}, True),
    (R, S.RESPONSES, False),  # holds a function_call
    (R, {**S.RESPONSES, "output": S.RESPONSES["output"][:2], "status": "incomplete"}, False),
    (Endpoint.ANTHROPIC_COUNT_TOKENS, {"input_tokens": 5}, False),
])
def test_is_cacheable(endpoint, doc, expected):
    assert is_cacheable(endpoint, 200, doc) is expected


def test_errors_are_never_cacheable():
    assert not is_cacheable(A, 500, S.ANTHROPIC_TEXT)
    assert not is_cacheable(C, 429, S.CHAT_TEXT)


def _resp(text: str, created: float = 1000.0) -> CachedResponse:
    return CachedResponse(200, (("content-type", "application/json"),), text.encode(), created)


def test_store_and_lookup_round_trip(tmp_path):
    cache = ResponseCache(DiskStorage(tmp_path / "c"), ttl=3600, max_entries=10, clock=lambda: 1001.0)
    assert cache.lookup("k") is None
    cache.store("k", _resp('{"a": "ü"}'))
    assert cache.lookup("k") == _resp('{"a": "ü"}')


def test_ttl_is_enforced_from_creation():
    now = [1000.0]
    cache = ResponseCache(MemoryStorage(clock=lambda: now[0]), ttl=60, max_entries=10,
                          clock=lambda: now[0])
    cache.store("k", _resp("x", created=1000.0))
    now[0] = 1059.0
    assert cache.lookup("k") is not None
    now[0] = 1061.0
    assert cache.lookup("k") is None


def test_max_entries_evicts_oldest_and_hits_get_a_second_chance():
    cache = ResponseCache(MemoryStorage(), ttl=0, max_entries=4)
    for i in range(4):
        cache.store(f"k{i}", _resp(str(i)))
    cache.store("k4", _resp("4"))
    assert cache.lookup("k0") is None  # the oldest went first
    # k1 was stored more than half the ring ago; a hit moves it to the front
    assert cache.lookup("k1") is not None
    for i in range(5, 8):
        cache.store(f"k{i}", _resp(str(i)))
    present = {f"k{i}" for i in range(8) if cache.storage.get("cache", f"k{i}") is not None}
    assert present == {"k1", "k5", "k6", "k7"}


class _Broken(MemoryStorage):
    def get(self, ns, key):
        raise StorageError("down")

    def incr_float(self, ns, key, amount, ttl=None):
        raise StorageError("down")


def test_storage_failure_is_a_miss_and_store_is_skipped():
    cache = ResponseCache(_Broken(), ttl=60, max_entries=10)
    assert cache.lookup("k") is None
    cache.store("k", _resp("x"))  # no exception reaches the request path


def test_cacheable_headers_keep_only_content_type():
    headers = {"Content-Type": "application/json", "request-id": "req_1", "content-length": "5",
               "anthropic-ratelimit-requests-remaining": "9"}
    assert cacheable_headers(headers) == (("content-type", "application/json"),)
