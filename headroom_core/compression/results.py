"""The values of the compression engine (engine.py): its settings, what it did per output and
per request, and the in-process memo of decisions that makes a re-sent history cheap."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from ..lru import LRU
from .counting import COUNTS


@dataclass(frozen=True)
class CompressionConfig:
    min_tokens: int = 500
    min_savings: float = 0.10
    protect_tools: tuple[str, ...] = ()
    compress_tools: tuple[str, ...] = ()
    model: str | None = None  # tokenizer choice; None: the request's model
    budget_ms: int | None = 2000
    harder: bool = False  # compress-first: tighter renderings before context fitting drops anything
    user_min_tokens: int = 2000  # pasted user text is compressed only from this size

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> "CompressionConfig":
        values = dict(min_tokens=settings.min_tokens, min_savings=settings.min_savings_ratio,
                      protect_tools=tuple(settings.protect_tool), compress_tools=tuple(settings.compress_tool),
                      budget_ms=settings.compression_budget_ms or None)
        values.update(overrides)
        return cls(**values)

    def rendering_key(self) -> str:
        """The settings a rendering depends on (tool lists decide eligibility, not renderings)."""
        return f"{self.min_tokens}|{self.min_savings!r}|{self.harder}|{self.model}"


class RenderHints(Protocol):
    """What a compressor may use for a tool result never rendered before (TOIN's ToinHints)."""

    fields: tuple[str, ...]
    retrieval_rate: float


# (tool name, output text, content hash) -> hints. The provider must answer the same for a
# content hash every time (TOIN stores its first answer), or renderings would not be stable.
HintProvider = Callable[[str, str, str], RenderHints]


@dataclass(frozen=True)
class TransformRecord:
    kind: str
    tool_name: str | None
    tokens_before: int
    tokens_after: int
    hash: str  # the marker hash (CCR key) of the original
    message_index: int
    target: str = "tool_result"  # or "user_text"
    omitted: int = 0
    unit: str = "lines"


@dataclass(frozen=True)
class PendingCount:
    """An original whose exact count a report left for `settled()`: transform `index`'s."""

    index: int
    digest: str
    text: str = field(repr=False)
    model: str | None = None


@dataclass(frozen=True)
class CompressionReport:
    """Token counts are exact unless `pending` names originals whose count is an estimate
    (only with `compress_request(..., exact=False)`); `settled()` gives the exact report."""

    tokens_before: int
    tokens_after: int
    transforms: tuple[TransformRecord, ...]
    changed: bool
    timed_out: bool
    errors: tuple[str, ...]
    skipped: tuple[str, ...] = ()  # why eligible-looking outputs were left alone (policy, size)
    pending: tuple[PendingCount, ...] = ()
    before_given: bool = False  # tokens_before was the caller's count: settling keeps it

    @property
    def tokens_saved(self) -> int:
        return self.tokens_before - self.tokens_after

    def settled(self) -> "CompressionReport":
        """This report with every count exact: the pending originals are counted (once per
        content: counting.COUNTS remembers them, so a re-sent output is never counted again)."""
        if not self.pending:
            return self
        transforms = list(self.transforms)
        for p in self.pending:
            transforms[p.index] = dataclasses.replace(
                transforms[p.index], tokens_before=COUNTS.count(p.digest, p.text, p.model))
        before = self.tokens_before if self.before_given else \
            self.tokens_after + sum(t.tokens_before - t.tokens_after for t in transforms)
        return dataclasses.replace(self, tokens_before=before, transforms=tuple(transforms), pending=())


@dataclass(frozen=True)
class OutputResult:
    """The decision for one text: its rendering (None: keep the original) and the counts."""

    text: str | None
    kind: str
    tokens_before: int
    tokens_after: int
    full_hash: str
    omitted: int = 0
    unit: str = "lines"
    reason: str = "ok"
    before_exact: bool = True  # False: tokens_before is counting.estimate's figure
    model: str | None = None  # the tokenizer the counts are in

    def with_exact_before(self) -> "OutputResult":
        """The same result with the original's exact count where counting.COUNTS knows it."""
        if self.before_exact:
            return self
        known = COUNTS.peek(self.full_hash, self.model)
        return self if known is None else dataclasses.replace(self, tokens_before=known, before_exact=True)


MEMO = LRU(512)  # decisions by sha256 of (text, context, config)
