"""The two drop policies: which droppable unit goes first."""

from __future__ import annotations

from typing import Protocol, Sequence

from .features import UnitFeatures
from .scoring import ScoringConfig, score_units
from .toin import ToinView


class DropPolicy(Protocol):
    name: str
    kept_note: str  # what the marker says was kept

    def drop_order(self, candidates: Sequence[int], feats: Sequence[UnitFeatures], query: str, *,
                   toin: ToinView | None, deadline: float | None) -> tuple[list[int], str]:
        """Candidate positions, first to drop first; and the semantic method used."""
        ...


class RollingWindow:
    """Drops the oldest droppable units first (`--no-intelligent-context`)."""

    name = "rolling"
    kept_note = "oldest dropped first, recent turns kept"

    def drop_order(self, candidates: Sequence[int], feats: Sequence[UnitFeatures], query: str, *,
                   toin: ToinView | None, deadline: float | None) -> tuple[list[int], str]:
        return list(candidates), "off"


class IntelligentContextManager:
    """Drops the lowest-scoring droppable units first (scoring.py); ties go oldest first."""

    kept_note = "errors and recent turns kept"

    def __init__(self, scoring: ScoringConfig) -> None:
        self.scoring = scoring
        self.name = "intelligent" if scoring.intelligent else "position"

    def drop_order(self, candidates: Sequence[int], feats: Sequence[UnitFeatures], query: str, *,
                   toin: ToinView | None, deadline: float | None) -> tuple[list[int], str]:
        result = score_units(candidates, feats, query, config=self.scoring, toin=toin,
                             deadline=deadline)
        order = sorted(range(len(candidates)), key=lambda i: (result.scores[i].score, i))
        return [candidates[i] for i in order], result.semantic_method
