"""The three wire dialects of retrieval behind one table, keyed by endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from ..sse import SSEEvent
from ..wire.common import Endpoint
from . import anthropic, openai_chat, openai_responses
from .anthropic_stream import AnthropicSplicer
from .answers import Answer
from .common import RoundFacts
from .openai_chat_stream import ChatSplicer
from .openai_responses_stream import ResponsesSplicer


class Splicer(Protocol):
    """A sans-IO stream splicer (one per client turn); see anthropic_stream for the contract."""

    ping: bytes
    round_done: bool
    errored: bool
    rounds: int

    @property
    def withholding(self) -> bool: ...

    def feed(self, ev: SSEEvent) -> list[bytes]: ...

    def end_round(self) -> RoundFacts: ...

    def begin_round(self) -> None: ...

    def finish(self, stop_override: str | None = None) -> list[bytes]: ...

    def abort(self) -> list[bytes]: ...

    def fail(self, status: int, message: str, error_type: str = ...) -> list[bytes]: ...


@dataclass(frozen=True)
class Dialect:
    endpoint: Endpoint
    continuable: str  # the stop value that lets a round be continued
    round_of_body: Callable[[dict], RoundFacts]
    continuation: Callable[[dict, RoundFacts, list[Answer], bool], dict]
    client_body: Callable[[list[dict], list[RoundFacts], str | None], dict]
    stop_after_dropping: Callable[[RoundFacts], str | None]
    carry_record: Callable[[RoundFacts, list[Answer]], dict]
    reinsert: Callable[[dict, str, dict], bool]
    history_calls_tool: Callable[[dict], bool]
    conversation_parts: Callable[[dict], tuple[Any, Any]]
    splicer: Callable[[], Splicer]
    error_type: str  # the provider's name for a server-side failure


def _dialect(module: Any, splicer: Callable[[], Splicer], error_type: str) -> Dialect:
    return Dialect(module.ENDPOINT, module.CONTINUABLE, module.round_of_body, module.continuation,
                   module.client_body, module.stop_after_dropping, module.carry_record,
                   module.reinsert, module.history_calls_tool, module.conversation_parts,
                   splicer, error_type)


DIALECTS: dict[Endpoint, Dialect] = {
    Endpoint.ANTHROPIC_MESSAGES: _dialect(anthropic, AnthropicSplicer, "api_error"),
    Endpoint.OPENAI_CHAT: _dialect(openai_chat, ChatSplicer, "server_error"),
    Endpoint.OPENAI_RESPONSES: _dialect(openai_responses, ResponsesSplicer, "server_error"),
}
