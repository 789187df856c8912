"""A growing coding-agent session, as a client sends it turn by turn (its whole history again
each turn, plus one new tool call and its result), in the three wire formats.

Used by the prefix-stability e2e test and the billing benchmark. Deterministic: the tool
outputs come from scripts/workloads.py with a seed per turn. Key order puts `messages`
(`input`) last, so a turn's body is the previous turn's body with new messages appended —
what lets a test compare raw byte prefixes of what reaches the provider.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import workloads as W

TASK = ("Payments are failing in production since this morning. Find out why, fix it, and make "
        "the tests pass. Check the logs, the open issues, the ledger rows and the code.")
SYSTEM = ("You are a careful coding agent working in the user's repository. Use the tools to "
          "inspect files, run commands and query services; explain what you find. ") * 20
TOOL_NAMES = ("Bash", "Read", "Grep", "mcp__github__list_issues", "postgres_query")
MODELS = {"anthropic": "claude-sonnet-4-5", "chat": "gpt-4o", "responses": "gpt-4o"}
PATHS = {"anthropic": "/v1/messages", "chat": "/v1/chat/completions", "responses": "/v1/responses"}

# One tool call per turn, cycling through what an agent runs; sizes as `scale` 1.0 gives them.
_MAKERS: tuple[tuple[Callable[..., W.Workload], dict], ...] = (
    (W.incident_log, {"lines": 160}),
    (W.file_read, {"lines": 140}),  # Read: protected, goes through whole
    (W.code_search, {"hits": 60}),
    (W.issue_json, {"n": 16}),
    (W.test_output, {"n": 160}),
    (W.db_rows, {"n": 90}),
    (W.large_diff, {"files": 3}),
)


@dataclass(frozen=True)
class Step:
    """One agent step: the assistant's words, its tool call, the tool's output."""

    text: str
    tool: str
    args: dict
    output: str


def steps(turns: int, scale: float = 1.0, seed: int = 100) -> list[Step]:
    out = []
    for k in range(turns):
        maker, sizes = _MAKERS[k % len(_MAKERS)]
        w = maker(seed=seed + k, **{name: max(2, int(n * scale)) for name, n in sizes.items()})
        out.append(Step(f"Step {k + 1}: {w.query} Let me check with {w.tool_name}.",
                        w.tool_name, w.tool_args, w.text))
    return out


def anthropic_body(history: list[Step], *, stream: bool = False, cache_control: bool = False,
                   model: str = MODELS["anthropic"]) -> dict:
    """`cache_control`: as Claude Code does, on the system prompt and on the last block of the
    last user message (the breakpoint moves forward every turn)."""
    system: list[dict] = [{"type": "text", "text": SYSTEM}]
    if cache_control:
        system[0]["cache_control"] = {"type": "ephemeral"}
    messages: list[dict] = [{"role": "user", "content": [{"type": "text", "text": TASK}]}]
    for k, s in enumerate(history):
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": s.text},
            {"type": "tool_use", "id": f"toolu_{k:03d}", "name": s.tool, "input": s.args}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k:03d}", "content": s.output}]})
    if cache_control:
        messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    doc: dict = {"model": model, "max_tokens": 1024}
    if stream:
        doc["stream"] = True
    doc.update(system=system, tools=[{"name": n, "description": f"The {n} tool.",
                                      "input_schema": {"type": "object"}} for n in TOOL_NAMES],
               messages=messages)
    return doc


def chat_body(history: list[Step], *, stream: bool = False, model: str = MODELS["chat"]) -> dict:
    messages: list[dict] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]
    for k, s in enumerate(history):
        messages.append({"role": "assistant", "content": s.text, "tool_calls": [
            {"id": f"call_{k:03d}", "type": "function",
             "function": {"name": s.tool, "arguments": json.dumps(s.args)}}]})
        messages.append({"role": "tool", "tool_call_id": f"call_{k:03d}", "content": s.output})
    doc: dict = {"model": model}
    if stream:
        doc.update(stream=True, stream_options={"include_usage": True})
    doc.update(tools=[{"type": "function", "function": {"name": n, "description": f"The {n} tool.",
                                                        "parameters": {"type": "object"}}}
                      for n in TOOL_NAMES], messages=messages)
    return doc


def responses_body(history: list[Step], *, stream: bool = False,
                   model: str = MODELS["responses"]) -> dict:
    items: list[dict] = [{"role": "user", "content": TASK}]
    for k, s in enumerate(history):
        items.append({"type": "message", "role": "assistant",
                      "content": [{"type": "output_text", "text": s.text}]})
        items.append({"type": "function_call", "call_id": f"call_{k:03d}", "name": s.tool,
                      "arguments": json.dumps(s.args)})
        items.append({"type": "function_call_output", "call_id": f"call_{k:03d}",
                      "output": s.output})
    doc: dict = {"model": model, "store": False, "instructions": SYSTEM}
    if stream:
        doc["stream"] = True
    doc.update(tools=[{"type": "function", "name": n, "description": f"The {n} tool.",
                       "parameters": {"type": "object"}} for n in TOOL_NAMES], input=items)
    return doc


def turn_bodies(dialect: str, turns: int, *, scale: float = 1.0, stream: bool = False,
                cache_control: bool = False, seed: int = 100, model: str | None = None) -> list[bytes]:
    """The body the client sends on each turn (turn k carries k tool results)."""
    history = steps(turns, scale, seed)
    model = model or MODELS[dialect]
    out = []
    for k in range(1, turns + 1):
        if dialect == "anthropic":
            doc = anthropic_body(history[:k], stream=stream, cache_control=cache_control, model=model)
        elif dialect == "chat":
            doc = chat_body(history[:k], stream=stream, model=model)
        else:
            doc = responses_body(history[:k], stream=stream, model=model)
        out.append(json.dumps(doc).encode())
    return out
