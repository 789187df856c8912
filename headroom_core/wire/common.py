"""Names shared by the three wire formats: which endpoint a body belongs to, and a tool output."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
