"""What the three stream splicers share: per-turn counters, the provider's JSON style, the round
boundary. Each dialect's wire format stays in its own module (anthropic_stream,
openai_chat_stream, openai_responses_stream); see anthropic_stream for the contract."""

from __future__ import annotations

from abc import ABC, abstractmethod

from .. import jsonfmt
from ..sse import SSEEvent, encode_event
from .common import add_usage


class RoundSplicer(ABC):
    """Base of a dialect's splicer: one per client turn. A subclass extends `_reset` with its
    own per-round state and says where a round's usage is (`_round_usage`)."""

    ping: bytes

    def __init__(self) -> None:
        self.rounds = 0  # rounds begun after the first
        self._total: dict | None = None  # usage of the rounds already finished
        # The provider's JSON layout, learnt from its first event: what we re-encode looks
        # like what we pass through byte for byte.
        self._style: jsonfmt.JsonStyle | None = None
        self.errored = False
        self._reset()

    def _reset(self) -> None:
        """The state of one round; a subclass's override calls this first."""
        self._map: dict[int, int] = {}  # provider index -> client index, this round
        self._withheld: set[int] = set()  # provider indexes of our headroom_retrieve calls
        self._real: list[str] = []  # ids of the client's own tool calls
        self._id: str | None = None
        self.round_done = False

    @property
    def withholding(self) -> bool:
        return bool(self._withheld)

    def _json_object(self, ev: SSEEvent) -> dict | None:
        """The event's data when it is a JSON object; None means: forward the event as received."""
        try:
            data = jsonfmt.loads(ev.data)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        if self._style is None:
            self._style = jsonfmt.detect_style(ev.data)
        return data

    def _encode(self, event: str | None, data: dict) -> bytes:
        """An event we changed or made, in the provider's JSON style."""
        return encode_event(event, jsonfmt.dumps(data, self._style or jsonfmt.COMPACT).decode())

    @abstractmethod
    def _round_usage(self) -> dict | None:
        """The current round's usage in the provider's shape (None when it sent none)."""

    def _turn_usage(self) -> dict | None:
        """Usage summed over the finished rounds and the current one."""
        return add_usage(self._total, self._round_usage())

    def begin_round(self) -> None:
        """Before feeding a continuation's events."""
        self._total = self._turn_usage()
        self.rounds += 1
        self._reset()
