"""What context fitting puts in place of the units it drops, and what it stores for retrieval.

`transcript` renders the dropped messages as plain text (the CCR original: what
`headroom_retrieve` returns). `marker_messages` is the one marker, shaped so the conversation
stays valid where it stands: OpenAI chat and Responses take a user message anywhere between
units; Anthropic needs user/assistant alternation, and a gap left by dropped (assistant, user)
units always lies between a user message and an assistant one, so the marker goes in as a short
assistant note followed by the user marker message. No kept message is touched.
Both are pure functions of the dropped units, so re-applying the same drops gives the same bytes.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Sequence

from ..compression.markers import make_marker
from .units import Conversation, Fmt, Unit

CONTEXT_KIND = "context"
ANTHROPIC_NOTE = "(Earlier turns of this conversation were omitted here to fit the context window.)"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _content_text(content: Any) -> str:
    if type(content) is str:
        return content
    if isinstance(content, list):
        return "\n".join(_block_text(b) for b in content)
    return "" if content is None else _json(content)


def _block_text(block: Any) -> str:
    if type(block) is str:
        return block
    if not isinstance(block, dict):
        return _json(block)
    btype = block.get("type")
    if btype in ("text", "input_text", "output_text"):
        return str(block.get("text", ""))
    if btype in ("tool_use", "server_tool_use", "mcp_tool_use"):
        return f"[tool call {block.get('name', '')} id={block.get('id', '')}] {_json(block.get('input'))}"
    if "tool_use_id" in block:
        flag = " (error)" if block.get("is_error") is True else ""
        return f"[tool result id={block['tool_use_id']}{flag}]\n{_content_text(block.get('content'))}"
    if btype in ("thinking", "redacted_thinking", "reasoning"):
        return f"[{btype}] {block.get('thinking', '')}".rstrip()
    if btype in ("image", "input_image", "document", "input_file"):
        return f"[{btype} omitted]"
    return _json(block)


def _message_text(fmt: Fmt, msg: Any) -> tuple[str, str]:
    """(label, text) of one message or Responses item."""
    if not isinstance(msg, dict):
        return "item", _json(msg)
    if fmt is Fmt.RESPONSES and msg.get("type") not in (None, "message"):
        itype = str(msg.get("type"))
        if itype.endswith("_output") or itype == "mcp_approval_response":
            return itype, f"[call_id={msg.get('call_id', '')}]\n{_content_text(msg.get('output'))}"
        if itype == "reasoning":
            summary = msg.get("summary")
            return itype, _content_text(summary) if summary else "(reasoning)"
        args = msg.get("arguments", msg.get("input", msg.get("action")))
        args_text = args if type(args) is str else _json(args)
        return itype, f"{msg.get('name', '')} call_id={msg.get('call_id', '')} {args_text}".strip()
    role = str(msg.get("role", "message"))
    parts = [_content_text(msg.get("content"))]
    for call in msg.get("tool_calls") or ():
        if isinstance(call, dict):
            fn = call.get("function") if isinstance(call.get("function"), dict) else {}
            parts.append(f"[tool call {fn.get('name', '')} id={call.get('id', '')}] {fn.get('arguments', '')}")
    if isinstance(msg.get("function_call"), dict):
        fc = msg["function_call"]
        parts.append(f"[function call {fc.get('name', '')}] {fc.get('arguments', '')}")
    if role == "tool":
        role = f"tool result id={msg.get('tool_call_id', '')}"
    return role, "\n".join(p for p in parts if p)


def unit_transcript(conv: Conversation, unit: Unit) -> str:
    """One dropped unit's part of the transcript: its messages, numbered by position."""
    out = []
    for i in range(unit.start, unit.end):
        label, text = _message_text(conv.fmt, conv.items[i])
        out.append(f"--- message {i + 1} ({label}) ---\n{text}")
    return "\n\n".join(out)


def transcript(conv: Conversation, dropped: Sequence[Unit],
               part: Callable[[Unit], str] | None = None) -> str:
    """The dropped messages in conversation order, as text the model can read back. `part`
    gives a unit's `unit_transcript` (from a cache: it depends on the unit's content and place)."""
    return "\n\n".join((part or (lambda unit: unit_transcript(conv, unit)))(u) for u in dropped) + "\n"


def marker_summary(dropped: Sequence[Unit], kept_note: str) -> str:
    messages = sum(u.size for u in dropped)
    tools = sum(1 for u in dropped if u.kind == "tool")
    return (f"{messages} earlier messages omitted to fit the context window "
            f"({tools} tool-call groups, {len(dropped) - tools} exchanges; {kept_note})")


def marker_messages(conv: Conversation, marker: str) -> list[dict]:
    """The messages that stand where the earliest dropped unit was."""
    if conv.fmt is Fmt.ANTHROPIC:
        return [{"role": "assistant", "content": ANTHROPIC_NOTE}, {"role": "user", "content": marker}]
    if conv.fmt is Fmt.RESPONSES and any(
            isinstance(item, dict) and item.get("type") == "message" for item in conv.items):
        return [{"type": "message", "role": "user",
                 "content": [{"type": "input_text", "text": marker}]}]
    return [{"role": "user", "content": marker}]


def build_marker(dropped: Sequence[Unit], hash: str, kept_note: str) -> str:
    return make_marker(marker_summary(dropped, kept_note), hash)
