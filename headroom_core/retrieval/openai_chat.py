"""OpenAI Chat Completions: retrieval rounds on whole bodies, continuations, carried exchanges.

`RoundFacts.assistant` is the round's assistant message in request shape (content and every
tool call, ours included), ready to be sent back in a continuation.
"""

from __future__ import annotations

import copy
from typing import Any

from ..wire.common import Endpoint
from .answers import Answer, RetrieveCall
from .common import LIMIT_NOTE, RoundFacts, carried_to_insert, summed_usage
from .tool import TOOL_NAME

ENDPOINT = Endpoint.OPENAI_CHAT
CONTINUABLE = "tool_calls"


def is_retrieve_call(call: Any) -> bool:
    fn = call.get("function") if isinstance(call, dict) else None
    return isinstance(fn, dict) and fn.get("name") == TOOL_NAME


def joined(first: str, second: str) -> str:
    """Text of two rounds shown as one message: a paragraph break where the words would run
    together, nothing where the model already left space."""
    if first and second and not first[-1].isspace() and not second[0].isspace():
        return first + "\n\n" + second
    return first + second


def assistant_message(message: dict) -> dict:
    """A response message as a request message (role, content, refusal, tool calls)."""
    out: dict = {"role": "assistant", "content": message.get("content")}
    for key in ("refusal", "tool_calls", "audio"):
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def round_of_body(doc: dict) -> RoundFacts:
    """The facts of a non-streamed response (choice 0; retrieval is not offered when n > 1)."""
    choices = doc.get("choices") if isinstance(doc.get("choices"), list) else []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    tool_calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
    calls = tuple(RetrieveCall(str(c.get("id") or ""), str(c["function"].get("arguments") or ""))
                  for c in tool_calls if is_retrieve_call(c))
    real = tuple(str(c.get("id")) for c in tool_calls if isinstance(c, dict) and not is_retrieve_call(c))
    return RoundFacts(calls, real, choice.get("finish_reason"), assistant_message(message),
                      doc.get("usage") if isinstance(doc.get("usage"), dict) else None, doc.get("id"))


def tool_message(answer: Answer, note: str = "") -> dict:
    return {"role": "tool", "tool_call_id": answer.call_id, "content": answer.text + note}


def continuation(request: dict, facts: RoundFacts, answers: list[Answer], last: bool) -> dict:
    doc = dict(request)
    note = LIMIT_NOTE if last else ""
    doc["messages"] = (list(request.get("messages") or []) + [copy.deepcopy(facts.assistant)]
                       + [tool_message(a, note) for a in answers])
    if last:
        doc["tool_choice"] = "none"
    return doc


def visible_calls(message: dict) -> list:
    calls = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
    return [c for c in calls if not is_retrieve_call(c)]


def client_body(responses: list[dict], rounds: list[RoundFacts], stop_override: str | None) -> dict:
    """The one completion the client gets: every round's text, the real tool calls, summed usage."""
    final = copy.deepcopy(responses[-1])
    final["id"] = responses[0].get("id", final.get("id"))
    text: str | None = None
    for facts in rounds:
        part = facts.assistant.get("content")
        if isinstance(part, str):
            text = part if text is None else joined(text, part)
    usage = summed_usage(rounds)
    choice = final["choices"][0]
    message = dict(choice.get("message") or {})
    message["content"] = text
    calls = visible_calls(rounds[-1].assistant)
    if calls:
        message["tool_calls"] = calls
    else:
        message.pop("tool_calls", None)
    choice["message"] = message
    if stop_override:
        choice["finish_reason"] = stop_override
    if usage is not None:
        final["usage"] = usage
    return final


def stop_after_dropping(facts: RoundFacts) -> str | None:
    if facts.stop == "tool_calls" and not facts.real_calls:
        return "stop"
    return None


# --- mixed turns ------------------------------------------------------------------------------

def carry_record(facts: RoundFacts, answers: list[Answer]) -> dict:
    calls = [copy.deepcopy(c) for c in facts.assistant.get("tool_calls") or [] if is_retrieve_call(c)]
    return {"calls": calls, "results": [tool_message(a) for a in answers]}


def reinsert(doc: dict, key: str, record: dict) -> bool:
    """Our tool calls join the assistant message that holds client call `key`; our tool
    messages follow the client's tool messages for it. Both places must exist."""
    messages = doc.get("messages")
    if not isinstance(messages, list):
        return False
    for i, msg in enumerate(messages):
        calls = msg.get("tool_calls") if isinstance(msg, dict) and msg.get("role") == "assistant" else None
        if not isinstance(calls, list) or not any(isinstance(c, dict) and c.get("id") == key for c in calls):
            continue
        end = i + 1
        while end < len(messages) and isinstance(messages[end], dict) and messages[end].get("role") == "tool":
            end += 1
        if end == i + 1:
            return False  # the client has not answered its calls yet
        ours, results = carried_to_insert(record, calls, "tool_call_id")
        if not ours:
            return False  # already there
        messages[i] = {**msg, "tool_calls": calls + ours}
        messages[end:end] = results
        return True
    return False


def history_calls_tool(doc: dict) -> bool:
    for msg in doc.get("messages") or []:
        if isinstance(msg, dict) and msg.get("role") == "assistant" and isinstance(msg.get("tool_calls"), list):
            if any(is_retrieve_call(c) for c in msg["tool_calls"]):
                return True
    return False


def conversation_parts(doc: dict) -> tuple[Any, Any]:
    messages = [m for m in doc.get("messages") or [] if isinstance(m, dict)]
    system = [m.get("content") for m in messages if m.get("role") in ("system", "developer")][:1]
    first_user = next((m.get("content") for m in messages if m.get("role") == "user"), None)
    return system, first_user
