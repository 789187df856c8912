"""Anthropic Messages: retrieval rounds on whole bodies, continuations, carried exchanges.

`RoundFacts.assistant` is the round's content blocks, in request shape (thinking blocks keep
their signatures), ready to be sent back as the assistant turn of a continuation.
"""

from __future__ import annotations

import copy
from typing import Any

from ..wire.common import Endpoint
from .answers import Answer, RetrieveCall
from .common import LIMIT_NOTE, RoundFacts, carried_to_insert, summed_usage
from .tool import TOOL_NAME

ENDPOINT = Endpoint.ANTHROPIC_MESSAGES
CONTINUABLE = "tool_use"


def is_retrieve_block(block: Any) -> bool:
    return (isinstance(block, dict) and block.get("type") == "tool_use"
            and block.get("name") == TOOL_NAME)


def call_of(block: dict, arguments: str | None = None) -> RetrieveCall:
    import json

    if arguments is None:
        arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
    return RetrieveCall(str(block.get("id") or ""), arguments)


def round_of_body(doc: dict) -> RoundFacts:
    """The facts of a non-streamed response."""
    content = doc.get("content") if isinstance(doc.get("content"), list) else []
    calls = tuple(call_of(b) for b in content if is_retrieve_block(b))
    real = tuple(str(b.get("id")) for b in content
                 if isinstance(b, dict) and b.get("type") == "tool_use" and not is_retrieve_block(b))
    return RoundFacts(calls, real, doc.get("stop_reason"), list(content),
                      doc.get("usage") if isinstance(doc.get("usage"), dict) else None,
                      doc.get("id"))


def tool_result(answer: Answer, note: str = "") -> dict:
    return {"type": "tool_result", "tool_use_id": answer.call_id, "content": answer.text + note}


def continuation(request: dict, facts: RoundFacts, answers: list[Answer], last: bool) -> dict:
    """The next request of the turn: the round's assistant turn plus our tool results.

    `last`: the bound is reached with this continuation, so the model must answer in text.
    """
    doc = dict(request)
    messages = list(request.get("messages") or [])
    blocks = copy.deepcopy(facts.assistant)
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        # A prefilled turn: the response continues the client's partial assistant message.
        prefill = dict(messages.pop())
        prior = prefill.get("content")
        prior = [{"type": "text", "text": prior}] if isinstance(prior, str) else list(prior or [])
        prefill["content"] = prior + blocks
        messages.append(prefill)
    else:
        messages.append({"role": "assistant", "content": blocks})
    note = LIMIT_NOTE if last else ""
    messages.append({"role": "user", "content": [tool_result(a, note) for a in answers]})
    doc["messages"] = messages
    if last:
        doc["tool_choice"] = {"type": "none"}
    return doc


def visible(blocks: list) -> list:
    return [b for b in blocks if not is_retrieve_block(b)]


def client_body(responses: list[dict], rounds: list[RoundFacts], stop_override: str | None) -> dict:
    """The one response the client gets for a non-streamed turn of several rounds."""
    final = dict(responses[-1])
    final["id"] = responses[0].get("id", final.get("id"))  # the id a streamed turn would show
    final["content"] = [b for facts in rounds for b in visible(facts.assistant)]
    usage = summed_usage(rounds)
    if usage is not None:
        final["usage"] = usage
    if stop_override:
        final["stop_reason"] = stop_override
    return final


def stop_after_dropping(facts: RoundFacts) -> str | None:
    """The stop reason to show when retrieval calls were dropped: a `tool_use` stop with no
    tool_use block left would leave the client waiting for a call that is not there."""
    if facts.stop == "tool_use" and not facts.real_calls:
        return "end_turn"
    return None


# --- mixed turns: the exchange is carried into the client's next request -------------------

def carry_record(facts: RoundFacts, answers: list[Answer]) -> dict:
    """What to re-insert later, keyed by the round's first client tool call id."""
    calls = [copy.deepcopy(b) for b in facts.assistant if is_retrieve_block(b)]
    return {"calls": calls, "results": [tool_result(a) for a in answers]}


def reinsert(doc: dict, key: str, record: dict) -> bool:
    """Put a carried exchange back: our tool_use blocks at the end of the assistant message
    that holds client call `key`, our tool results after the client's results in the next
    user message. Nothing is inserted unless both places exist (a valid conversation or none).
    """
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return False
    for i, msg in enumerate(messages):
        if not (isinstance(msg, dict) and msg.get("role") == "assistant"
                and isinstance(msg.get("content"), list)
                and any(isinstance(b, dict) and b.get("id") == key for b in msg["content"])):
            continue
        nxt = messages[i + 1] if i + 1 < len(messages) else None
        if not (isinstance(nxt, dict) and nxt.get("role") == "user"
                and isinstance(nxt.get("content"), list)):
            return False
        calls, results = carried_to_insert(record, msg["content"], "tool_use_id")
        if not calls:
            return False  # already there (the client kept it, or a second pass)
        content = nxt["content"]
        at = 0
        for j, block in enumerate(content):
            if isinstance(block, dict) and block.get("type") == "tool_result":
                at = j + 1
        messages[i] = {**msg, "content": msg["content"] + calls}
        messages[i + 1] = {**nxt, "content": content[:at] + results + content[at:]}
        return True
    return False


def history_calls_tool(doc: dict) -> bool:
    """Whether any assistant turn in the history called headroom_retrieve."""
    for msg in doc.get("messages") or []:
        if isinstance(msg, dict) and msg.get("role") == "assistant" and isinstance(msg.get("content"), list):
            if any(is_retrieve_block(b) for b in msg["content"]):
                return True
    return False


def conversation_parts(doc: dict) -> tuple[Any, Any]:
    """What identifies a conversation: the system prompt and the first user message."""
    first_user = next((m.get("content") for m in doc.get("messages") or []
                       if isinstance(m, dict) and m.get("role") == "user"), None)
    return doc.get("system"), first_user
