"""Checks that a fitted conversation still obeys its provider's rules, and shared test helpers."""

from __future__ import annotations

import hashlib
import json

from headroom_core import tokens
from headroom_core.wire.common import Endpoint


def conversation(doc: dict, endpoint: Endpoint) -> list:
    return doc["input"] if endpoint is Endpoint.OPENAI_RESPONSES else doc["messages"]


def check_anthropic(messages: list) -> None:
    assert messages and messages[0]["role"] == "user", "first message must be a user message"
    for prev, cur in zip(messages, messages[1:]):
        assert prev["role"] != cur["role"], f"roles must alternate: {prev['role']} then {cur['role']}"
    for i, msg in enumerate(messages):
        blocks = msg["content"] if isinstance(msg["content"], list) else []
        if msg["role"] == "assistant":
            uses = [b["id"] for b in blocks if b.get("type") == "tool_use"]
            if uses:
                nxt = messages[i + 1]["content"] if i + 1 < len(messages) else []
                results = [b["tool_use_id"] for b in nxt if isinstance(b, dict) and b.get("type") == "tool_result"]
                assert sorted(results) == sorted(uses), f"tool_use {uses} not answered in the next message"
        else:
            results = [b["tool_use_id"] for b in blocks if b.get("type") == "tool_result"]
            if results:
                prev = messages[i - 1]["content"] if i > 0 else []
                uses = [b["id"] for b in prev if isinstance(b, dict) and b.get("type") == "tool_use"]
                assert set(results) <= set(uses), f"tool_result {results} without its tool_use"


def check_chat(messages: list) -> None:
    open_calls: set[str] = set()
    for msg in messages:
        if msg["role"] == "tool":
            assert msg["tool_call_id"] in open_calls, f"tool message {msg['tool_call_id']} not after its call"
            open_calls.discard(msg["tool_call_id"])
            continue
        assert not open_calls, f"tool_calls {open_calls} not answered before the next message"
        if msg["role"] == "assistant":
            open_calls = {c["id"] for c in msg.get("tool_calls") or ()}
    assert not open_calls


def check_responses(items: list) -> None:
    calls = {it["call_id"] for it in items if it.get("type") == "function_call"}
    outputs = {it["call_id"] for it in items if it.get("type") == "function_call_output"}
    assert calls == outputs, f"unpaired calls/outputs: {calls ^ outputs}"
    seen: set[str] = set()
    for i, it in enumerate(items):
        if it.get("type") == "function_call":
            seen.add(it["call_id"])
        elif it.get("type") == "function_call_output":
            assert it["call_id"] in seen, "function_call_output before its function_call"
        elif it.get("type") == "reasoning":
            assert i + 1 < len(items) and items[i + 1].get("type") != "reasoning"


CHECK = {Endpoint.ANTHROPIC_MESSAGES: check_anthropic, Endpoint.OPENAI_CHAT: check_chat,
         Endpoint.OPENAI_RESPONSES: check_responses}


def check_valid(doc: dict, endpoint: Endpoint) -> None:
    CHECK[endpoint](conversation(doc, endpoint))


def plain_text(doc: dict, endpoint: Endpoint) -> str:
    """Every string of the conversation as the model reads it (not JSON-escaped)."""
    key = "input" if endpoint is Endpoint.OPENAI_RESPONSES else "messages"
    return "\n".join(tokens.request_texts({key: doc[key]}, endpoint))


def dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class DictCCR:
    """The CCR store's put/get contract, content-addressed, for tests that need no storage."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], str] = {}

    def put(self, tenant: str, original: str, *, kind: str, tool_name: str | None = None) -> str:
        digest = hashlib.sha256(original.encode()).hexdigest()[:16]
        self.entries[(tenant, digest)] = original
        return digest

    def get(self, tenant: str, digest: str) -> str | None:
        return self.entries.get((tenant, digest))
