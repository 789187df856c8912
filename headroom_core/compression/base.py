"""Values shared by the compressors: what they are given and what they return."""

from __future__ import annotations

from dataclasses import dataclass

from .markers import make_marker


@dataclass(frozen=True)
class ContentKind:
    """What a tool output is: json, log, search, diff, code, html, table or text."""

    name: str
    language: str | None = None  # for code: python, typescript, go, ...

    def __str__(self) -> str:
        return f"{self.name}:{self.language}" if self.language else self.name


@dataclass(frozen=True)
class Omitted:
    """How much a rendering left out, in the unit the reader counts (lines, items, matches)."""

    count: int
    unit: str


@dataclass(frozen=True)
class CompressContext:
    """Everything a compressor may look at besides the text itself.

    Only inputs that are fixed once the output exists (its tool, the call's arguments, the user
    text before it, TOIN's hints, which are decided once per content hash) belong here: the
    rendering must be a pure function of them (DESIGN rule 2).
    """

    hash: str  # marker hash of the original, already chosen (the CCR key)
    query: str = ""  # user text before the output + the call's arguments, for relevance
    tool_name: str | None = None
    harder: bool = False  # compress-first before context fitting drops anything
    hint_fields: tuple[str, ...] = ()  # TOIN: fields the model asked for in such outputs before
    retrieval_rate: float = 0.0  # TOIN: how often such outputs were retrieved, in [0,1]

    def marker(self, summary: str) -> str:
        return make_marker(summary, self.hash)


@dataclass(frozen=True)
class Rendering:
    """A shorter rendering of one original (the compressor's input) and what it omitted."""

    text: str
    kind: str
    omitted: Omitted
