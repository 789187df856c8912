"""OpenAI Responses: retrieval rounds on whole bodies, continuations, carried exchanges.

`RoundFacts.assistant` is the round's output items. A continuation chains on the round's
response (`previous_response_id`) when the client chains; otherwise it replays the input plus
the round's output items (ids dropped when `store` is false: such items exist nowhere else).
The client is given the *last* round's response id, whose stored context holds every round.
"""

from __future__ import annotations

import copy
from typing import Any

from ..wire.common import Endpoint
from .answers import Answer, RetrieveCall
from .common import LIMIT_NOTE, RoundFacts, summed_usage
from .tool import TOOL_NAME

ENDPOINT = Endpoint.OPENAI_RESPONSES
CONTINUABLE = "completed"

# Output items the client must act on; other `*_call` items run on the provider's side.
_CLIENT_CALLS = {"function_call", "custom_tool_call", "computer_call", "local_shell_call",
                 "shell_call", "apply_patch_call", "mcp_approval_request"}
_HOSTED_CALLS = {"web_search_call", "file_search_call", "code_interpreter_call",
                 "image_generation_call", "mcp_call", "mcp_list_tools"}


def is_retrieve_item(item: Any) -> bool:
    return (isinstance(item, dict) and item.get("type") == "function_call"
            and item.get("name") == TOOL_NAME)


def is_client_call(item: Any) -> bool:
    if not isinstance(item, dict) or is_retrieve_item(item):
        return False
    kind = str(item.get("type") or "")
    return kind in _CLIENT_CALLS or (kind.endswith("_call") and kind not in _HOSTED_CALLS)


def call_id_of(item: dict) -> str:
    return str(item.get("call_id") or item.get("id") or "")


def round_of_body(doc: dict) -> RoundFacts:
    output = doc.get("output") if isinstance(doc.get("output"), list) else []
    calls = tuple(RetrieveCall(call_id_of(i), str(i.get("arguments") or ""))
                  for i in output if is_retrieve_item(i))
    real = tuple(call_id_of(i) for i in output if is_client_call(i))
    return RoundFacts(calls, real, doc.get("status"), list(output),
                      doc.get("usage") if isinstance(doc.get("usage"), dict) else None, doc.get("id"))


def output_item(answer: Answer, note: str = "") -> dict:
    return {"type": "function_call_output", "call_id": answer.call_id, "output": answer.text + note}


def as_input_list(value: Any) -> list:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return list(value) if isinstance(value, list) else []


def replayable(item: dict, store: bool) -> dict:
    if store:
        return copy.deepcopy(item)
    return {k: copy.deepcopy(v) for k, v in item.items() if k != "id"}


def continuation(request: dict, facts: RoundFacts, answers: list[Answer], last: bool) -> dict:
    doc = dict(request)
    note = LIMIT_NOTE if last else ""
    outputs = [output_item(a, note) for a in answers]
    if request.get("previous_response_id") and facts.response_id:
        doc["previous_response_id"] = facts.response_id
        doc["input"] = outputs
    else:
        store = request.get("store") is not False
        doc["input"] = (as_input_list(request.get("input"))
                        + [replayable(i, store) for i in facts.assistant if isinstance(i, dict)]
                        + outputs)
    if last:
        doc["tool_choice"] = "none"
    return doc


def visible(items: list) -> list:
    return [i for i in items if not is_retrieve_item(i)]


def client_body(responses: list[dict], rounds: list[RoundFacts], stop_override: str | None) -> dict:
    final = dict(responses[-1])
    final["output"] = [i for facts in rounds for i in visible(facts.assistant)]
    usage = summed_usage(rounds)
    if usage is not None:
        final["usage"] = usage
    return final


def stop_after_dropping(facts: RoundFacts) -> str | None:
    return None  # a Responses turn has no stop reason naming tool calls


# --- mixed turns ------------------------------------------------------------------------------

def carry_record(facts: RoundFacts, answers: list[Answer]) -> dict:
    calls = [{k: copy.deepcopy(v) for k, v in i.items() if k not in ("id", "status")}
             for i in facts.assistant if is_retrieve_item(i)]
    return {"calls": calls, "results": [output_item(a) for a in answers]}


def _run_end(items: list, at: int, suffix_ok) -> int:
    """The index after the run of items around `at` that `suffix_ok` accepts."""
    end = at + 1
    while end < len(items) and suffix_ok(items[end]):
        end += 1
    return end


def _is_call(item: Any) -> bool:
    return isinstance(item, dict) and (is_client_call(item) or is_retrieve_item(item))


def _is_output(item: Any) -> bool:
    return isinstance(item, dict) and str(item.get("type") or "").endswith("_output")


def reinsert(doc: dict, key: str, record: dict) -> bool:
    """Our function_call joins the run of calls holding client call `key` (when the input has
    it: a full history), our outputs join the run of outputs answering it (with
    previous_response_id only the outputs are in the input). Outputs must be there."""
    items = doc.get("input")
    if not isinstance(items, list):
        return False
    ours = {c.get("call_id") for c in record.get("calls", [])}
    if any(isinstance(i, dict) and i.get("call_id") in ours for i in items if _is_output(i)):
        return False  # already there
    out_at = next((n for n, i in enumerate(items) if _is_output(i) and i.get("call_id") == key), None)
    if out_at is None:
        return False
    call_at = next((n for n, i in enumerate(items) if _is_call(i) and call_id_of(i) == key), None)
    if call_at is not None:
        end = _run_end(items, call_at, _is_call)
        items[end:end] = copy.deepcopy(record.get("calls", []))
        out_at += len(record.get("calls", [])) if out_at >= end else 0
    end = _run_end(items, out_at, _is_output)
    items[end:end] = copy.deepcopy(record.get("results", []))
    return True


def history_calls_tool(doc: dict) -> bool:
    items = doc.get("input")
    return isinstance(items, list) and any(is_retrieve_item(i) for i in items)


def conversation_parts(doc: dict) -> tuple[Any, Any]:
    first_user = next((i.get("content") for i in as_input_list(doc.get("input"))
                       if isinstance(i, dict) and i.get("role") == "user"), None)
    return doc.get("instructions"), first_user
