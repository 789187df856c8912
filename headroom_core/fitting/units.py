"""A conversation cut into units that context fitting keeps or drops whole.

A unit is a run of consecutive messages that can leave the conversation without breaking the
provider's rules: a tool call with its results (Anthropic `tool_use` ↔ `tool_result`, OpenAI
`tool_calls` ↔ `tool` messages, Responses `function_call` ↔ `function_call_output`, reasoning
items with the item they precede), or a user/assistant exchange. Anthropic conversations are
cut into (assistant, user) pairs after the first user turn, so dropping any set of units keeps
user/assistant alternation. Protected units are never dropped: system messages, the first user
message, the last K turns, anything carrying `cache_control`.

A unit's id is a hash of its content (plus its occurrence number among identical units), so the
same unit has the same id on every turn of an append-only conversation.
"""

from __future__ import annotations

import enum
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from ..wire.common import Endpoint
from . import canonical


class Fmt(str, enum.Enum):
    ANTHROPIC = "anthropic"
    CHAT = "chat"
    RESPONSES = "responses"


FORMAT_OF = {
    Endpoint.ANTHROPIC_MESSAGES: Fmt.ANTHROPIC,
    Endpoint.OPENAI_CHAT: Fmt.CHAT,
    Endpoint.OPENAI_RESPONSES: Fmt.RESPONSES,
}

# Responses item types that call a tool (answered by an item with the same call_id) ...
_CALL_TYPES = frozenset({"function_call", "custom_tool_call", "local_shell_call", "computer_call",
                         "shell_call", "apply_patch_call", "mcp_approval_request"})
# ... and the items that answer them.
_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output",
                           "local_shell_call_output", "computer_call_output", "shell_call_output",
                           "apply_patch_call_output", "mcp_approval_response"})
_CACHE_CONTROL = re.compile(r',?"cache_control":\{[^{}]*\}')


@dataclass(frozen=True)
class ToolResult:
    """One tool result inside a unit, for scoring (TOIN pattern, error flag)."""

    tool_name: str
    text: str
    is_error: bool


@dataclass(frozen=True)
class Unit:
    uid: str
    start: int  # index of its first message in the conversation list
    end: int  # one past its last message
    kind: str  # "tool", "exchange" or "system"
    protected: str | None  # why it is never dropped: system, first_user, cache_control, recent
    tool_results: tuple[ToolResult, ...] = field(default=(), compare=False)

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Conversation:
    fmt: Fmt
    key: str  # "messages" or "input": where the list lives in the request body
    items: list  # the body's own list (not a copy)
    units: tuple[Unit, ...]
    anchor: tuple  # what every turn of this conversation repeats (for its id)


@dataclass
class _Info:
    role: str  # system, user, assistant, tool, other
    calls: list[str] = field(default_factory=list)  # call ids this message issues
    results: list[str] = field(default_factory=list)  # call ids this message answers
    call_names: dict[str, str] = field(default_factory=dict)
    outputs: list[tuple[str, str, bool]] = field(default_factory=list)  # (call id, text, is_error)
    glue_next: bool = False  # must stay with the next message (Responses reasoning)
    cache_control: bool = False


def _text_of(content: Any) -> str:
    """The readable text of a content value (string, or list of blocks / parts)."""
    if type(content) is str:
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if type(block) is str:
                parts.append(block)
            elif isinstance(block, dict):
                for key in ("text", "content", "output"):
                    value = block.get(key)
                    if value is not None:
                        parts.append(_text_of(value))
                        break
        return "\n".join(p for p in parts if p)
    return ""


def _has_cache_control(msg: dict) -> bool:
    if "cache_control" in msg:
        return True
    content = msg.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and "cache_control" in b for b in content)


def _anthropic_info(msg: Any) -> _Info:
    if not isinstance(msg, dict):
        return _Info("other")
    info = _Info(msg.get("role") if msg.get("role") in ("user", "assistant") else "other",
                 cache_control=_has_cache_control(msg))
    content = msg.get("content")
    if isinstance(content, list):
        for block in content:
            if not isinstance(block, dict):
                continue
            btype = block.get("type")
            if btype in ("tool_use", "server_tool_use", "mcp_tool_use") and isinstance(block.get("id"), str):
                info.calls.append(block["id"])
                info.call_names[block["id"]] = str(block.get("name", ""))
            elif isinstance(block.get("tool_use_id"), str):  # tool_result and server tool results
                info.results.append(block["tool_use_id"])
                info.outputs.append((block["tool_use_id"], _text_of(block.get("content")),
                                     block.get("is_error") is True))
    return info


def _chat_info(msg: Any) -> _Info:
    if not isinstance(msg, dict):
        return _Info("other")
    role = msg.get("role")
    info = _Info("system" if role in ("system", "developer") else
                 role if role in ("user", "assistant", "tool") else "other",
                 cache_control=_has_cache_control(msg))
    if role == "assistant":
        for call in msg.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("id"), str):
                info.calls.append(call["id"])
                fn = call.get("function")
                info.call_names[call["id"]] = str(fn.get("name", "")) if isinstance(fn, dict) else ""
    elif role == "tool" and isinstance(msg.get("tool_call_id"), str):
        info.results.append(msg["tool_call_id"])
        info.outputs.append((msg["tool_call_id"], _text_of(msg.get("content")), False))
    elif role == "function":  # legacy functions API: answers the function_call just before it
        info.role = "tool"
        info.outputs.append(("", _text_of(msg.get("content")), False))
        info.call_names[""] = str(msg.get("name", ""))
    return info


def _responses_info(item: Any) -> _Info:
    if not isinstance(item, dict):
        return _Info("other")
    itype = item.get("type")
    if itype in (None, "message"):
        role = item.get("role")
        return _Info("system" if role in ("system", "developer") else
                     role if role in ("user", "assistant") else "other",
                     cache_control=_has_cache_control(item))
    call_id = item.get("call_id") or item.get("id")
    if itype == "mcp_approval_response":
        call_id = item.get("approval_request_id")
    if itype in _CALL_TYPES and isinstance(call_id, str):
        info = _Info("assistant", calls=[call_id])
        info.call_names[call_id] = str(item.get("name") or item.get("server_label") or itype)
        return info
    if itype in _OUTPUT_TYPES and isinstance(call_id, str):
        output = item.get("output")
        text = output if type(output) is str else _text_of(output)
        return _Info("tool", results=[call_id], outputs=[(call_id, text, False)])
    if itype == "reasoning":
        return _Info("assistant", glue_next=True)
    return _Info("assistant")  # web_search_call, file_search_call, mcp_call ...: self-contained


def _anthropic_cuts(infos: list[_Info]) -> list[int]:
    """Unit starts: the leading user turn, then each (assistant run, user run) pair."""
    cuts = [0]
    i, n = 0, len(infos)
    while i < n and infos[i].role != "assistant":
        i += 1
    if 0 < i < n:
        cuts.append(i)
    while i < n:  # i is at the start of an assistant run
        while i < n and infos[i].role != "user":
            i += 1
        while i < n and infos[i].role == "user":
            i += 1
        if i < n:
            cuts.append(i)
    return cuts


def _openai_cuts(infos: list[_Info]) -> list[int]:
    cuts = [0]
    for i in range(1, len(infos)):
        prev, cur = infos[i - 1], infos[i]
        if prev.glue_next:
            continue
        if cur.role == "system" or prev.role == "system":
            cuts.append(i)
        elif cur.role == "user" and prev.role != "user":
            cuts.append(i)
        elif cur.role == "assistant" and (prev.role != "user" or cur.calls or cur.glue_next):
            cuts.append(i)  # a reply joins the user message it answers; a tool step stands alone
    return cuts


def _merge_spans(cuts: list[int], infos: list[_Info]) -> list[int]:
    """Drop cuts that would separate a call from its results (any order, any distance)."""
    first_seen: dict[str, int] = {}
    last_seen: dict[str, int] = {}
    for i, info in enumerate(infos):
        for cid in info.calls + info.results:
            first_seen.setdefault(cid, i)
            last_seen[cid] = i
    blocked: list[tuple[int, int]] = sorted(
        (first_seen[c], last_seen[c]) for c in first_seen if last_seen[c] > first_seen[c])
    if not blocked:
        return cuts
    forbidden: set[int] = set()
    reach = -1
    for lo, hi in blocked:
        for cut in range(max(lo + 1, reach + 1), hi + 1):
            forbidden.add(cut)
        reach = max(reach, hi)
    return [c for c in cuts if c == 0 or c not in forbidden]


_INFO = {Fmt.ANTHROPIC: _anthropic_info, Fmt.CHAT: _chat_info, Fmt.RESPONSES: _responses_info}


def _canonical(msgs: list, dumps: Callable[[Any], str] = canonical.dumps) -> str:
    text = dumps(msgs)  # json.dumps(ensure_ascii=False, compact), re-sends made cheap
    if '"cache_control"' in text:  # breakpoints move every turn; the unit stays the same unit
        text = _CACHE_CONTROL.sub("", text)
    return text


def split_conversation(doc: dict, endpoint: Endpoint, protect_last_turns: int) -> Conversation | None:
    """Cut a request body's conversation into units; None when it has nothing fitting can drop."""
    fmt = FORMAT_OF.get(endpoint)
    if fmt is None or not isinstance(doc, dict):
        return None
    key = "input" if fmt is Fmt.RESPONSES else "messages"
    if fmt is Fmt.RESPONSES and (doc.get("previous_response_id") or doc.get("conversation")):
        return None  # the history lives on the server: we see only its newest items
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        return None  # a Responses string input, or no messages at all
    infos = [_INFO[fmt](m) for m in items]
    if fmt is Fmt.CHAT:  # a legacy `function` message answers the function_call before it
        for i, info in enumerate(infos):
            if info.role == "tool" and not info.results and i > 0:
                infos[i - 1].glue_next = True
    cuts = (_anthropic_cuts if fmt is Fmt.ANTHROPIC else _openai_cuts)(infos)
    cuts = _merge_spans(cuts, infos)
    bounds = list(zip(cuts, cuts[1:] + [len(items)]))

    roles = [info.role for info in infos]
    first_user = roles.index("user") if "user" in roles else None
    # The last K turns: a turn is one unit (a model step with what answers it), system units
    # aside. The newest turn is the one being answered, so at least one is always kept.
    recent: set[int] = set()
    k = max(1, protect_last_turns)
    for n in range(len(bounds) - 1, -1, -1):
        if len(recent) >= k:
            break
        lo, hi = bounds[n]
        if "system" not in roles[lo:hi]:
            recent.add(n)

    seen: dict[str, int] = {}
    units: list[Unit] = []
    sha256, encoders = hashlib.sha256, canonical.Batch()
    # Per message, what the unit loop asks of its span (a slice test in C, not a generator).
    outputs = [bool(info.outputs) for info in infos]
    long_outputs = [any(len(text) >= canonical.MEMO_WORTH_CHARS for _, text, _ in info.outputs)
                    for info in infos]  # where the memo of escaped strings pays
    tooling = [bool(info.calls or info.results) for info in infos]
    cached = [info.cache_control for info in infos]
    for n, (lo, hi) in enumerate(bounds):
        dumps = encoders.memo if True in long_outputs[lo:hi] else encoders.plain
        digest = sha256(_canonical(items[lo:hi], dumps).encode("utf-8", "surrogatepass")).hexdigest()[:24]
        occurrence = seen.get(digest, 0)
        seen[digest] = occurrence + 1
        results: tuple[ToolResult, ...] = ()
        if True in outputs[lo:hi]:
            span = infos[lo:hi]
            names = {cid: name for info in span for cid, name in info.call_names.items()}
            results = tuple(ToolResult(names.get(cid, ""), text, err)
                            for info in span for cid, text, err in info.outputs)
        if "system" in roles[lo:hi]:
            protected, kind = "system", "system"
        else:
            kind = "tool" if True in tooling[lo:hi] else "exchange"
            protected = ("first_user" if first_user is not None and lo <= first_user < hi else
                         "cache_control" if True in cached[lo:hi] else
                         "recent" if n in recent else None)
        units.append(Unit(f"{digest}.{occurrence}", lo, hi, kind, protected, results))

    return Conversation(fmt, key, items, tuple(units), _anchor(doc, fmt, items, infos))



def _anchor(doc: dict, fmt: Fmt, items: list, infos: list[_Info] | None = None) -> tuple:
    """System prompt, a leading system message, and the first user message alone (not its
    unit, which grows while it is the newest one): what every turn of a conversation repeats."""
    first_user = None
    for i, item in enumerate(items):
        role = infos[i].role if infos is not None else _INFO[fmt](item).role
        if role == "user":
            first_user = i
            break
    system = doc.get("instructions" if fmt is Fmt.RESPONSES else "system")
    head = items[0] if items else None
    leading = [head] if head is not None and (infos[0] if infos else _INFO[fmt](head)).role == "system" else []
    return (system, leading, _canonical([items[first_user]]) if first_user is not None else None)


def conversation_anchor(doc: dict, endpoint: Endpoint) -> tuple | None:
    """The anchor `split_conversation` would give, without cutting the whole conversation."""
    fmt = FORMAT_OF.get(endpoint)
    if fmt is None or not isinstance(doc, dict):
        return None
    key = "input" if fmt is Fmt.RESPONSES else "messages"
    items = doc.get(key)
    if not isinstance(items, list) or not items:
        return None
    return _anchor(doc, fmt, items)


def message_shape(fmt: Fmt, msg: Any) -> tuple:
    """Role and call ids of a message: what a re-rendering (compress-first) must not change."""
    info = _INFO[fmt](msg)
    return info.role, tuple(info.calls), tuple(info.results)
