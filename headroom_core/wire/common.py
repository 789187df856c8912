"""What the three wire formats share: the endpoint a body belongs to, a tool output, the base
request view, and the helpers that read and write text in content blocks."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from ..jsonfmt import dumps


class Endpoint(str, enum.Enum):
    """The provider API a request body is written for (its value is what records and logs show)."""

    ANTHROPIC_MESSAGES = "anthropic.messages"
    ANTHROPIC_COUNT_TOKENS = "anthropic.count_tokens"
    OPENAI_CHAT = "openai.chat"
    OPENAI_RESPONSES = "openai.responses"
    OPENAI_OTHER = "openai.other"
    ANTHROPIC_OTHER = "anthropic.other"

    @property
    def provider(self) -> str:
        """"anthropic" or "openai": whose error envelope and usage shape apply."""
        return self.value.split(".", 1)[0]


@dataclass(frozen=True)
class ToolOutput:
    """One tool result as the model will read it, plus where it stands in the request."""

    location: tuple  # opaque path used by replace_tool_output
    message_index: int
    tool_name: str | None
    tool_args: str  # the call's arguments as JSON text ("" if unknown)
    call_id: str | None
    text: str  # all text parts joined with "\n"
    is_error: bool
    query_context: str  # the last user text before the output (for relevance)


class StaleLocationError(ValueError):
    """A location no longer points at what it named (the request changed since it was read)."""


def str_or_none(value: Any) -> str | None:
    return value if type(value) is str else None


def arguments_json(value: Any) -> str:
    """A tool call's input as compact JSON text (numbers as written), "" when absent or odd."""
    if value is None:
        return ""
    try:
        return dumps(value).decode("utf-8")
    except (TypeError, ValueError, RecursionError):
        return ""


def text_parts(parts: list, text_type: str) -> list[str]:
    """The text of every `{"type": text_type, "text": str}` block, in order."""
    return [p["text"] for p in parts
            if isinstance(p, dict) and p.get("type") == text_type and type(p.get("text")) is str]


def content_text(content: Any, text_type: str) -> str:
    """A content value as text: a string as is, a list of blocks as its text parts joined by "\\n"."""
    if type(content) is str:
        return content
    if isinstance(content, list):
        return "\n".join(text_parts(content, text_type))
    return ""


def replace_content_text(owner: dict, key: str, new_text: str, text_type: str) -> None:
    """Write `new_text` where `owner[key]`'s text stood: a string stays a string; in a list of
    blocks one text block takes the first text position, other blocks keep their order."""
    content = owner.get(key)
    if not isinstance(content, list):
        owner[key] = new_text
        return
    merged: dict | None = None
    cache_control = None
    kept: list = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == text_type and type(part.get("text")) is str:
            if merged is None:
                merged = dict(part)  # keeps the block's other fields (cache_control, citations)
                merged["text"] = new_text
                kept.append(merged)
            elif "cache_control" in part:
                cache_control = part["cache_control"]  # a breakpoint on a merged-away block
            continue
        kept.append(part)
    if merged is None:
        kept.insert(0, {"type": text_type, "text": new_text})
    elif cache_control is not None and "cache_control" not in merged:
        merged["cache_control"] = cache_control
    content[:] = kept  # in place: whoever holds the list sees the change


def replace_text_at(message: dict, location: tuple, new_text: str, text_type: str) -> None:
    """Set the string content (location of length 2) or one text part (length 3)."""
    content = message.get("content")
    if len(location) == 2 and type(content) is str:
        message["content"] = new_text
        return
    j = location[2] if len(location) == 3 else None
    if (not isinstance(content, list) or type(j) is not int or not 0 <= j < len(content)
            or not isinstance(content[j], dict) or content[j].get("type") != text_type
            or type(content[j].get("text")) is not str):
        raise StaleLocationError(f"no user text at {location!r}")
    content[j]["text"] = new_text


def user_text_parts(messages: list, key: str, text_type: str) -> list[tuple[tuple, str]]:
    """(location, text) of each user-authored text: a string content is (key, i), a text
    part of a block list is (key, i, j). Tool results are never user-authored text."""
    found: list[tuple[tuple, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if type(content) is str:
            found.append(((key, i), content))
        elif isinstance(content, list):
            found.extend(((key, i, j), part["text"]) for j, part in enumerate(content)
                         if isinstance(part, dict) and part.get("type") == text_type
                         and type(part.get("text")) is str)
    return found

class ProviderRequest:
    """A typed view over a parsed request body. `doc` is mutated in place by the replace_*
    methods; nothing else in it is touched, so unknown fields survive (DESIGN.md rule 1).

    This base class serves endpoints whose format we do not rewrite (embeddings, models, ...):
    it knows the model and stream flag and finds no tool outputs.
    """

    max_tokens_keys: tuple[str, ...] = ("max_tokens",)
    messages_key = "messages"

    def __init__(self, doc: dict, endpoint: Endpoint) -> None:
        self.doc = doc
        self.endpoint = endpoint

    @property
    def model(self) -> str | None:
        model = self.doc.get("model")
        return model if type(model) is str else None

    @property
    def stream(self) -> bool:
        return self.doc.get("stream") is True

    @property
    def max_tokens(self) -> int | None:
        for key in self.max_tokens_keys:
            value = self.doc.get(key)
            if type(value) is int:
                return value
        return None

    @property
    def messages(self) -> list:
        messages = self.doc.get(self.messages_key)
        return messages if isinstance(messages, list) else []

    @property
    def tools(self) -> list:
        tools = self.doc.get("tools")
        return tools if isinstance(tools, list) else []

    def system_text(self) -> str:
        return ""

    def tool_names(self) -> list[str]:
        return [t["name"] for t in self.tools if isinstance(t, dict) and type(t.get("name")) is str]

    def tool_outputs(self) -> list[ToolOutput]:
        return []

    def replace_tool_output(self, out: ToolOutput, new_text: str) -> None:
        raise StaleLocationError(f"{self.endpoint.value} requests carry no tool outputs")

    def user_texts(self) -> list[tuple[tuple, str]]:
        return []

    def replace_user_text(self, location: tuple, new_text: str) -> None:
        raise StaleLocationError(f"{self.endpoint.value} requests carry no user texts")

    # --- helpers for the formats ---

    def _message(self, location: tuple, index: int) -> dict:
        """The message at location[index], checked to still be a dict."""
        messages = self.messages
        i = location[index] if len(location) > index else None
        if type(i) is not int or not 0 <= i < len(messages) or not isinstance(messages[i], dict):
            raise StaleLocationError(f"no message at {location!r}")
        return messages[i]


class MessagesRequest(ProviderRequest):
    """Formats whose user text lives in `messages[*].content` text parts (Anthropic, chat)."""

    def user_texts(self) -> list[tuple[tuple, str]]:
        return user_text_parts(self.messages, "messages", "text")

    def replace_user_text(self, location: tuple, new_text: str) -> None:
        message = self._message(location, 1)
        if message.get("role") != "user":
            raise StaleLocationError(f"no user message at {location!r}")
        replace_text_at(message, location, new_text, "text")
