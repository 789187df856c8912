"""One request being fitted (manager.py): its units' counts, the decisions so far, and the report.

Compress-first re-renders units in place and `restore` puts them back; `apply_drops` writes
the kept units and the marker into the body's own list; `report` sums what was done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from .. import tokens
from ..wire.common import Endpoint
from .features import LazyFeatures
from .policy import DropPolicy
from .render import marker_messages
from .units import Conversation, Unit
from .windows import ModelLimit

if TYPE_CHECKING:
    from .manager import CompressHarder, ContextFitter

MARKER_TOKENS_ESTIMATE = 120  # the marker message(s), counted exactly once built


@dataclass(frozen=True)
class FitReport:
    fitted: bool  # fitting changed the request
    tokens_before: int  # o200k (or the model's encoding) over the whole request, unscaled
    tokens_after: int
    dropped_units: int  # units left out of this request (sticky ones included)
    marker_hash: str | None
    compress_first_savings: int
    sticky_reused: bool  # decisions of earlier turns were re-applied
    newly_dropped: int = 0
    dropped_messages: int = 0
    window: int = 0
    reserve: int = 0
    fits: bool = True
    strategy: str = ""  # "intelligent", "position", "rolling"
    semantic_method: str = "off"  # "embeddings", "bm25", "off"
    reason: str = ""


class FitWork:
    """One request being fitted: its units, their current counts, the decisions so far."""

    def __init__(self, fitter: "ContextFitter", tenant: str, conv: Conversation, endpoint: Endpoint,
                 model: str | None, limit: ModelLimit, reserve: int, fixed: int) -> None:
        self.fitter, self.tenant, self.conv = fitter, tenant, conv
        self.endpoint, self.model = endpoint, model
        self.limit, self.reserve, self.fixed = limit, reserve, fixed
        self.counted = [fitter.features.counted(conv, u, endpoint, model) for u in conv.units]
        self.normal_tokens = [c.tokens for c in self.counted]
        self.variants = [""] * len(conv.units)  # ":harder" where compress-first re-rendered it
        self.tokens_before = fixed + sum(self.normal_tokens)
        self.originals: dict[int, list] = {}  # position → its messages before compress-first
        self.dropped: set[str] = set()
        self.harder: set[str] = set()
        self.marker_tokens = 0

    def features(self) -> LazyFeatures:
        """Scoring features of the units as they stand now (a policy reads what it needs)."""
        return LazyFeatures(self.fitter.features, self.conv, self.endpoint, self.model,
                            list(self.variants))

    def input_tokens(self) -> int:
        dropped = self.dropped
        kept = sum(c.tokens for u, c in zip(self.conv.units, self.counted) if u.uid not in dropped)
        marker = self.marker_tokens or (MARKER_TOKENS_ESTIMATE if self.dropped else 0)
        return self.fixed + kept + marker

    def fits(self, count: int, ratio: float = 1.0) -> bool:
        return math.ceil(count * self.limit.count_scale) + self.reserve <= self.limit.window * ratio

    def _recount(self, pos: int, variant: str) -> None:
        self.variants[pos] = variant
        self.counted[pos] = self.fitter.features.counted(self.conv, self.conv.units[pos],
                                                         self.endpoint, self.model, variant)

    def compress(self, positions: Sequence[int], harder: CompressHarder) -> None:
        for pos in positions:
            unit = self.conv.units[pos]
            rendered = self.fitter.harder_rendering(self.tenant, self.conv, unit, harder)
            if rendered is None or rendered == self.conv.items[unit.start:unit.end]:
                continue  # failed, or nothing left to compress: the unit stays as it is
            self.originals[pos] = self.conv.items[unit.start:unit.end]
            self.conv.items[unit.start:unit.end] = rendered  # same length: indices stay valid
            self._recount(pos, ":harder")

    def restore(self, pos: int) -> None:
        unit = self.conv.units[pos]
        self.conv.items[unit.start:unit.end] = self.originals.pop(pos)
        self._recount(pos, "")

    def apply_drops(self, gone: Sequence[Unit], marker: str) -> None:
        inserted = marker_messages(self.conv, marker)
        self.marker_tokens = tokens.count_text(
            "\n".join(tokens.request_texts({self.conv.key: inserted}, self.endpoint)), self.model)
        kept: list = []
        for unit in self.conv.units:
            if unit.uid in self.dropped:
                kept.extend(inserted)
                inserted = []
            else:
                kept.extend(self.conv.items[unit.start:unit.end])
        self.conv.items[:] = kept  # in place: views over the body see the new list

    def report(self, fitted: bool, policy: DropPolicy, **kw: Any) -> FitReport:
        units = self.conv.units
        gone = [u for u in units if u.uid in self.dropped] if fitted else []
        after = self.input_tokens() if fitted else self.tokens_before
        savings = sum(self.normal_tokens[p] - self.counted[p].tokens for p in self.originals)
        return FitReport(
            fitted=fitted, tokens_before=self.tokens_before, tokens_after=after,
            dropped_units=len(gone), marker_hash=kw.pop("marker_hash", None),
            compress_first_savings=max(0, savings) if fitted else 0,
            sticky_reused=kw.pop("sticky_reused", False), dropped_messages=sum(u.size for u in gone),
            window=self.limit.window, reserve=self.reserve, fits=self.fits(after),
            strategy=policy.name, **kw)
