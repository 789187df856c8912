"""Realistic agent conversations, one abstract script rendered in all three wire formats.

A script is a system prompt, a first user message and rounds; a round is one assistant step and
what answers it (a tool call and its result, or a reply and the user's next message), so every
round is two messages in each format. Seeded: the same arguments give the same conversation.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace

from headroom_core.wire.common import Endpoint


@dataclass(frozen=True)
class Round:
    kind: str  # "tool" or "chat"
    assistant_text: str
    output: str  # the tool result, or the user's next message
    tool_name: str = ""
    tool_args: dict = field(default_factory=dict)
    is_error: bool = False


@dataclass(frozen=True)
class Script:
    system: str
    first_user: str
    rounds: tuple[Round, ...]

    def with_rounds(self, rounds) -> "Script":
        return replace(self, rounds=tuple(rounds))


SYSTEM = ("You are a coding agent working in a Python repository. Use the tools to read files, "
          "search the code and run the tests. Keep answers short.")
TASK = "The HTTP header parser drops continuation lines. Find the bug in the parser and fix it."

_WORDS = ("invoice ledger widget account token buffer stream value field order chunk encode "
          "decode cache retry timeout socket client server config option module handler").split()


def _code(rng: random.Random, module: str, lines: int, n: int) -> str:
    out = [f'"""{module}: {" ".join(rng.sample(_WORDS, 6))}."""', "import re", ""]
    while len(out) < lines:
        name = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{n}_{len(out)}"
        out.append(f"def {name}(value, {rng.choice(_WORDS)}=None):")
        out.append(f"    # {' '.join(rng.sample(_WORDS, 8))}")
        for _ in range(rng.randrange(3, 8)):
            out.append(f"    {rng.choice(_WORDS)} = {rng.choice(_WORDS)}({rng.choice(_WORDS)}, "
                       f"{rng.randrange(1000)})")
        out.append(f"    return {rng.choice(_WORDS)}")
        out.append("")
    return "\n".join(out[:lines])


def _grep(rng: random.Random, term: str, hits: int, n: int) -> str:
    return "\n".join(
        f"src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}_{n}_{i}.py:{rng.randrange(1, 900)}:"
        f"    {rng.choice(_WORDS)} = {term}({rng.choice(_WORDS)}, {rng.randrange(100)})"
        for i in range(hits))


def _tests_passed(rng: random.Random, count: int, n: int) -> str:
    lines = [f"tests/test_{rng.choice(_WORDS)}_{n}.py::test_{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{i} PASSED"
             for i in range(count)]
    return "\n".join(lines + [f"==== {count} passed in {rng.randrange(1, 9)}.{rng.randrange(10, 99)}s ===="])


def traceback_output(test: str, path: str) -> str:
    return (f"tests/test_headers.py::{test} FAILED\n"
            "Traceback (most recent call last):\n"
            f'  File "{path}", line 88, in parse_header_block\n'
            "    name, value = line.split(':', 1)\n"
            "ValueError: not enough values to unpack (expected 2, got 1)\n"
            "==== 1 failed, 41 passed in 2.31s ====\nexit code 1")


def tool_round(rng: random.Random, n: int, size: int = 60) -> Round:
    choice = n % 4
    if choice == 0:
        path = f"src/{rng.choice(_WORDS)}/{rng.choice(_WORDS)}_{n}.py"
        return Round("tool", f"Let me read {path}.", _code(rng, path, size, n), "read_file", {"path": path})
    if choice == 1:
        term = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{n}"
        return Round("tool", f"Searching for {term}.", _grep(rng, term, size // 2, n), "grep", {"pattern": term})
    if choice == 2:
        return Round("tool", "Running the test suite.", _tests_passed(rng, size // 2, n), "run_tests",
                     {"path": "tests/"})
    path = f"src/{rng.choice(_WORDS)}_{n}"
    listing = "\n".join(f"{path}/{rng.choice(_WORDS)}_{i}.py" for i in range(size // 2))
    return Round("tool", f"Listing {path}.", listing, "list_dir", {"path": path})


SMALL_TALK = (("Done with that step.", "ok, thanks"), ("Shall I continue?", "yes please"),
              ("That looks fine.", "great"), ("Moving on.", "sure"))


def chat_round(n: int) -> Round:
    a, u = SMALL_TALK[n % len(SMALL_TALK)]
    return Round("chat", a, f"{u} ({n})")


def agent_script(rounds: int, *, seed: int = 7, size: int = 60, chat_every: int = 5) -> Script:
    rng = random.Random(seed)
    out = []
    for n in range(rounds):
        out.append(chat_round(n) if chat_every and n % chat_every == chat_every - 1 else
                   tool_round(rng, n, size))
    return Script(SYSTEM, TASK, tuple(out))


def huge_output(rng: random.Random, n: int, lines: int) -> Round:
    """One big tool output: a build log, a JSON listing, a whole file or a repository grep."""
    choice = n % 4
    if choice == 0:
        levels = ("INFO", "INFO", "INFO", "DEBUG", "WARN")
        log = "\n".join(f"2024-05-{1 + i % 28:02d}T10:{i % 60:02d}:{(i * 7) % 60:02d}Z {rng.choice(levels)} "
                        f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)} request_id={rng.randrange(16**8):08x} "
                        f"{' '.join(rng.sample(_WORDS, 5))} took {rng.randrange(1, 900)}ms"
                        for i in range(lines))
        return Round("tool", "Fetching the build log.", log, "bash", {"command": "cat build.log"})
    if choice == 1:
        rows = [{"id": f"{rng.choice(_WORDS)}-{n}-{i}", "status": rng.choice(("ok", "ok", "pending")),
                 "owner": rng.choice(_WORDS), "size": rng.randrange(10**6), "tags": rng.sample(_WORDS, 3)}
                for i in range(lines)]
        return Round("tool", "Listing the records.", json.dumps(rows, indent=1), "list_records",
                     {"table": rng.choice(_WORDS)})
    if choice == 2:
        path = f"src/{rng.choice(_WORDS)}/generated_{n}.py"
        return Round("tool", f"Reading {path}.", _code(rng, path, lines, n), "read_file", {"path": path})
    term = rng.choice(_WORDS)
    return Round("tool", f"Searching the repository for {term}.", _grep(rng, term, lines, n), "grep",
                 {"pattern": term})


def mixed_script(rounds: int, huge_at: tuple[int, ...], *, seed: int = 3, huge_lines: int = 2000,
                 chat_every: int = 2) -> Script:
    """Many small turns (short chat, small tool results) and a few huge tool outputs at `huge_at`."""
    rng = random.Random(seed)
    out = []
    for n in range(rounds):
        if n in huge_at:
            out.append(huge_output(rng, len(out), huge_lines))
        elif chat_every and n % chat_every == 0:
            out.append(chat_round(n))
        else:
            out.append(tool_round(rng, n, size=6))
    return Script(SYSTEM, TASK, tuple(out))


# --- rendering ----------------------------------------------------------------------------------

def _call_id(endpoint: Endpoint, n: int) -> str:
    return {Endpoint.ANTHROPIC_MESSAGES: f"toolu_{n:04d}", Endpoint.OPENAI_CHAT: f"call_{n:04d}",
            Endpoint.OPENAI_RESPONSES: f"fc_{n:04d}"}[endpoint]


def to_anthropic(script: Script, *, model: str = "claude-sonnet-4-5", max_tokens: int = 4096) -> dict:
    messages: list = [{"role": "user", "content": script.first_user}]
    for n, r in enumerate(script.rounds):
        if r.kind == "chat":
            messages.append({"role": "assistant", "content": [{"type": "text", "text": r.assistant_text}]})
            messages.append({"role": "user", "content": r.output})
            continue
        cid = _call_id(Endpoint.ANTHROPIC_MESSAGES, n)
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": r.assistant_text},
            {"type": "tool_use", "id": cid, "name": r.tool_name, "input": r.tool_args}]})
        result = {"type": "tool_result", "tool_use_id": cid, "content": r.output}
        if r.is_error:
            result["is_error"] = True
        messages.append({"role": "user", "content": [result]})
    return {"model": model, "max_tokens": max_tokens,
            "system": [{"type": "text", "text": script.system, "cache_control": {"type": "ephemeral"}}],
            "tools": [{"name": t, "description": f"{t} tool", "input_schema": {"type": "object"}}
                      for t in ("read_file", "grep", "run_tests", "list_dir")],
            "messages": messages}


def to_chat(script: Script, *, model: str = "gpt-4o", max_tokens: int = 4096) -> dict:
    messages: list = [{"role": "system", "content": script.system},
                      {"role": "user", "content": script.first_user}]
    for n, r in enumerate(script.rounds):
        if r.kind == "chat":
            messages.append({"role": "assistant", "content": r.assistant_text})
            messages.append({"role": "user", "content": r.output})
            continue
        cid = _call_id(Endpoint.OPENAI_CHAT, n)
        messages.append({"role": "assistant", "content": r.assistant_text, "tool_calls": [
            {"id": cid, "type": "function",
             "function": {"name": r.tool_name, "arguments": json.dumps(r.tool_args)}}]})
        messages.append({"role": "tool", "tool_call_id": cid, "content": r.output})
    return {"model": model, "max_completion_tokens": max_tokens, "messages": messages,
            "tools": [{"type": "function", "function": {"name": t, "parameters": {"type": "object"}}}
                      for t in ("read_file", "grep", "run_tests", "list_dir")]}


def to_responses(script: Script, *, model: str = "gpt-5", max_tokens: int = 4096) -> dict:
    items: list = [{"role": "user", "content": script.first_user}]
    for n, r in enumerate(script.rounds):
        if r.kind == "chat":
            items.append({"type": "message", "role": "assistant",
                          "content": [{"type": "output_text", "text": r.assistant_text}]})
            items.append({"role": "user", "content": r.output})
            continue
        cid = _call_id(Endpoint.OPENAI_RESPONSES, n)
        items.append({"type": "function_call", "call_id": cid, "name": r.tool_name,
                      "arguments": json.dumps(r.tool_args)})
        items.append({"type": "function_call_output", "call_id": cid, "output": r.output})
    return {"model": model, "instructions": script.system, "max_output_tokens": max_tokens,
            "input": items,
            "tools": [{"type": "function", "name": t, "parameters": {"type": "object"}}
                      for t in ("read_file", "grep", "run_tests", "list_dir")]}


RENDER = {Endpoint.ANTHROPIC_MESSAGES: to_anthropic, Endpoint.OPENAI_CHAT: to_chat,
          Endpoint.OPENAI_RESPONSES: to_responses}
FORMATS = tuple(RENDER)


def render(endpoint: Endpoint, script: Script, **kw) -> dict:
    return RENDER[endpoint](script, **kw)
