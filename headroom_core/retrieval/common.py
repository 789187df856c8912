"""Values shared by the three wire dialects of retrieval: one round's facts, the turn's outcome.

A *round* is one provider response inside one client turn; a turn has more than one round when
headroom answered `headroom_retrieve` calls and asked the provider to continue.
"""

from __future__ import annotations

import copy
import enum
from dataclasses import dataclass, field
from typing import Any, Iterable

from .answers import Answer, RetrieveCall


@dataclass(frozen=True)
class RoundFacts:
    """What one provider response held, in the terms the continuation logic needs."""

    calls: tuple[RetrieveCall, ...]  # our headroom_retrieve calls
    real_calls: tuple[str, ...]  # ids of the client's own tool calls in this round
    stop: str | None  # Anthropic stop_reason, chat finish_reason, Responses status
    assistant: Any  # the round's output in the dialect's request shape (see each dialect)
    usage: dict | None  # the round's usage in the provider's own shape
    response_id: str | None = None
    complete: bool = True  # the round's terminal event (or whole body) arrived


class Next(enum.Enum):
    """What to do after a round."""

    DONE = "done"  # no retrieval call: the turn is over
    CONTINUE = "continue"  # only retrieval calls: answer them and call the provider again
    CARRY = "carry"  # retrieval calls mixed with client calls: answer them in the next request
    STOP = "stop"  # retrieval calls we cannot continue (bound, truncated output): drop them


def next_step(facts: RoundFacts, continuable_stop: str, rounds_done: int,
              max_rounds: int) -> Next:
    if not facts.calls:
        return Next.DONE
    if not facts.complete:
        return Next.STOP
    if facts.real_calls:
        return Next.CARRY
    if facts.stop != continuable_stop or rounds_done >= max_rounds:
        return Next.STOP
    return Next.CONTINUE


def add_usage(total: dict | None, more: dict | None) -> dict | None:
    """Sum two usage objects of the same shape: integers add up, nested objects recurse,
    anything else (service tier, floats) takes the later value."""
    if total is None:
        return dict(more) if isinstance(more, dict) else None
    if not isinstance(more, dict):
        return dict(total)
    out = dict(total)
    for key, value in more.items():
        have = out.get(key)
        if type(value) is int and type(have) is int:
            out[key] = have + value
        elif isinstance(value, dict) and isinstance(have, dict):
            out[key] = add_usage(have, value)
        elif value is not None or key not in out:
            out[key] = value
    return out


def summed_usage(rounds: Iterable[RoundFacts]) -> dict | None:
    """A turn's usage: its rounds' added up (None when no round reported any)."""
    total: dict | None = None
    for facts in rounds:
        total = add_usage(total, facts.usage)
    return total


def merge_usage(start: dict | None, delta: dict | None) -> dict | None:
    """An Anthropic stream's usage: message_start's figures, overridden by message_delta's
    (whose numbers are cumulative for the message)."""
    if start is None:
        return dict(delta) if isinstance(delta, dict) else None
    out = dict(start)
    if isinstance(delta, dict):
        out.update({k: v for k, v in delta.items() if v is not None})
    return out


def carried_to_insert(record: dict, present: list, answer_key: str) -> tuple[list, list]:
    """The calls of a carried exchange (see each dialect's `carry_record`) not already among
    `present` (the assistant message's own calls), and the results answering them (`answer_key`:
    the field by which a result names its call); copies, ready to insert."""
    have = {c.get("id") for c in present if isinstance(c, dict)}
    calls = [c for c in record.get("calls", []) if c.get("id") not in have]
    ids = {c.get("id") for c in calls}
    results = [r for r in record.get("results", []) if r.get(answer_key) in ids]
    return copy.deepcopy(calls), copy.deepcopy(results)


@dataclass
class TurnOutcome:
    """What retrieval did during one client turn (copied to flow metadata and the record)."""

    rounds: int = 0  # continuations made after answering retrieval calls
    hashes: list[str] = field(default_factory=list)  # every hash the model asked for, in order
    retrieved_bytes: int = 0
    misses: int = 0
    carried: int = 0  # retrieval answers carried into the next request (mixed turns)
    stopped: str = ""  # why calls were dropped instead of answered ("" when none were)
    error: str = ""  # a continuation that failed

    def add_answers(self, answers: list[Answer]) -> None:
        for a in answers:
            self.hashes.append(a.hash)
            self.retrieved_bytes += a.bytes
            self.misses += 0 if a.found else 1

    def as_metadata(self) -> dict[str, Any]:
        """A plain dict (tnetstring-serialisable) for flow.metadata."""
        out: dict[str, Any] = {"rounds": self.rounds, "hashes": list(self.hashes),
                               "bytes": self.retrieved_bytes}
        for name in ("misses", "carried"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        for name in ("stopped", "error"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    def comment(self) -> str:
        """One line for the flow's comment in mitmweb ("" when retrieval did nothing)."""
        if not self.hashes and not self.error and not self.stopped:
            return ""
        parts = [f"headroom: retrieval {self.rounds} round(s)",
                 f"{len(self.hashes)} hash(es) {', '.join(h or '?' for h in self.hashes)}",
                 f"{self.retrieved_bytes} bytes"]
        if self.misses:
            parts.append(f"{self.misses} miss(es)")
        if self.carried:
            parts.append(f"{self.carried} carried to the next request")
        if self.stopped:
            parts.append(f"stopped: {self.stopped}")
        if self.error:
            parts.append(f"error: {self.error}")
        return "; ".join(parts)


LIMIT_NOTE = ("\n\n[headroom: this turn reached its limit of headroom_retrieve rounds; answer with "
              "what you have.]")
