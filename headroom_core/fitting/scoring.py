"""How much each droppable unit is worth keeping: weighted factors, each in [0, 1].

- recency: position among the droppable units (oldest 0, newest 1);
- semantic: similarity to the current task — MiniLM embeddings when the semantic extra is
  installed and loaded, BM25 otherwise — min-max scaled over the candidates;
- toin: TOIN-learned importance of the unit's tool output patterns (for a rendering of
  ours, its original's pattern);
- error: tracebacks, failures, non-zero exits, results flagged as errors;
- reference: later messages mention its paths, ids or names.

Position-only scoring (`--no-intelligent-scoring`) uses recency alone. The score is the weighted
mean, so weights need not sum to one.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from itertools import chain
from typing import Mapping, Sequence

from .. import bm25, embeddings
from .features import UnitFeatures
from .toin import ToinView

log = logging.getLogger("headroom.fitting")

FACTORS = ("recency", "semantic", "toin", "error", "reference")
DEFAULT_WEIGHTS = {"recency": 0.30, "semantic": 0.25, "toin": 0.10, "error": 0.20, "reference": 0.15}
QUERY_CHARS = 2000
BM25_QUERY_CHARS = 600
REFERENCES_FOR_FULL_SCORE = 3
REFERENCE_MAX_SHARE = 0.05
EMBED_BATCH = 16
EMBED_CHARS = 600  # the start of a unit (what was asked, the head of its output); ~150 word pieces
# Measured on the project's 2-core machines: ~35 unit texts/s (one torch thread, ~150 word
# pieces each); short texts go at ~500/s. Used to keep embedding work inside the deadline.
EMBED_SECONDS_PER_TEXT = 0.03
DEFAULT_EMBED_BUDGET_S = 1.0  # when the caller gives no deadline


@dataclass(frozen=True)
class ScoringConfig:
    intelligent: bool = True  # False: position only
    weights: tuple[tuple[str, float], ...] = tuple(DEFAULT_WEIGHTS.items())
    semantic: bool = True  # use embeddings when the extra is installed (BM25 otherwise)

    @classmethod
    def from_weights(cls, weights: Mapping[str, float], *, intelligent: bool = True,
                     semantic: bool = True) -> "ScoringConfig":
        merged = dict(DEFAULT_WEIGHTS)
        merged.update(weights)
        return cls(intelligent, tuple((f, float(merged[f])) for f in FACTORS), semantic)


@dataclass(frozen=True)
class UnitScore:
    score: float
    recency: float
    semantic: float = 0.0
    toin: float = 0.0
    error: float = 0.0
    reference: float = 0.0


@dataclass(frozen=True)
class ScoringResult:
    scores: tuple[UnitScore, ...]  # one per candidate, in the candidates' order
    semantic_method: str  # "embeddings", "bm25" or "off"


def _minmax(values: Sequence[float]) -> list[float]:
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [0.0 for _ in values]
    return [(v - lo) / (hi - lo) for v in values]


def _lexical(query: str, feats: Sequence[UnitFeatures]) -> list[float]:
    """BM25 of each unit's term profile against the task (units without a match score 0).
    The profiles' terms were counted with the features: a request counts only its query."""
    scores = [0.0] * len(feats)
    ranked = bm25.rank_counted([f.profile_terms() for f in feats], query[:BM25_QUERY_CHARS],
                               limit=len(feats))
    for index, score in ranked:
        scores[index] = score
    return scores


_observed_s_per_text = EMBED_SECONDS_PER_TEXT  # updated from real batches (a busy machine is slower)


def _embedded(query: str, texts: Sequence[str], deadline: float | None) -> list[float] | None:
    """Cosine similarities, or None when the model is not loaded or the deadline would pass.

    A long history seen for the first time takes several requests' budgets to embed: each
    request embeds the batches that fit before its deadline (they stay cached) and uses BM25
    until every candidate is cached.
    """
    global _observed_s_per_text
    if not embeddings.ready():
        embeddings.load_in_background()  # the next request gets embeddings; this one gets BM25
        return None
    if deadline is None:
        deadline = time.monotonic() + DEFAULT_EMBED_BUDGET_S
    texts = [t[:EMBED_CHARS] for t in texts]
    vectors = embeddings.cached_many(texts)
    missing = list(dict.fromkeys(t for t, v in zip(texts, vectors) if v is None))
    for start in range(0, len(missing), EMBED_BATCH):
        batch = missing[start:start + EMBED_BATCH]
        began = time.monotonic()
        if began + (len(batch) + 1) * _observed_s_per_text > deadline:
            return None
        embeddings.embed(batch)
        spent = (time.monotonic() - began) / len(batch)
        _observed_s_per_text = max(EMBED_SECONDS_PER_TEXT, 0.7 * _observed_s_per_text + 0.3 * spent)
    if time.monotonic() + _observed_s_per_text > deadline:
        return None  # not even the query fits
    if missing:  # embedded just now (and cached): the same vectors as a later turn reads
        vectors = embeddings.cached_many(texts)
    if any(v is None for v in vectors):  # pushed out of the cache meanwhile by other requests
        vectors = embeddings.embed(texts)
    q = embeddings.embed([query[:EMBED_CHARS]])[0]
    return [max(0.0, float(q @ v)) for v in vectors]


def build_query(parts: Sequence[str]) -> str:
    """The current task, from the newest text first, bounded in size."""
    out, size = [], 0
    share = max(200, QUERY_CHARS // max(1, len(parts)))
    for part in parts:
        piece = part[:share]
        out.append(piece)
        size += len(piece)
        if size >= QUERY_CHARS:
            break
    return "\n".join(out)[:QUERY_CHARS]


def reference_scores(candidates: Sequence[int], all_feats: Sequence[UnitFeatures]) -> list[float]:
    """Per candidate: how many of its specific identifiers a later unit mentions, in [0, 1].

    An identifier found in many units (a common name, a shared directory) says nothing about
    one of them: only those in at most REFERENCE_MAX_SHARE of the units (at least 3) count.
    """
    idents = [f.identifiers for f in all_feats]
    seen_in = Counter(chain.from_iterable(idents))  # units each identifier appears in
    common = max(3, int(len(idents) * REFERENCE_MAX_SHARE))
    # Newest first, with the identifiers of the units after `pos` in `later` (set operations
    # in C rather than a Python step per identifier).
    wanted = set(candidates)
    hits: dict[int, int] = {}
    later: set[str] = set()
    for pos in range(len(idents) - 1, -1, -1):
        if pos in wanted:
            hits[pos] = sum(1 for ident in idents[pos] & later if seen_in[ident] <= common)
        later.update(idents[pos])
    return [min(1.0, hits[pos] / REFERENCES_FOR_FULL_SCORE) for pos in candidates]


def toin_scores(feats: Sequence[UnitFeatures], toin: ToinView) -> list[float]:
    """Per unit: the highest TOIN importance among its tool outputs' patterns. A rendering
    counts with its original's pattern, resolved from its marker hash (memoised in TOIN).
    TOIN unavailable: the factor is 0 rather than the request left over its window."""
    memo: dict[tuple[str, str], float] = {}

    def importance(pattern: tuple[str, str] | None) -> float:
        if pattern is None:
            return 0.0
        if pattern not in memo:
            memo[pattern] = toin.importance(*pattern)
        return memo[pattern]

    out = []
    try:
        for f in feats:
            values = [importance(p) for p in f.patterns]
            values += [importance(toin.rendering_pattern(h)) for _, h in f.rendered]
            out.append(max(values, default=0.0))
    except Exception:  # a storage outage
        log.warning("TOIN unavailable for scoring; its factor counts 0", exc_info=True)
    return out + [0.0] * (len(feats) - len(out))


def score_units(candidates: Sequence[int], all_feats: Sequence[UnitFeatures], query: str, *,
                config: ScoringConfig, toin: ToinView | None = None,
                deadline: float | None = None) -> ScoringResult:
    """Scores for the units at positions `candidates` (indices into `all_feats`, oldest first)."""
    n = len(candidates)
    recency = [i / (n - 1) if n > 1 else 1.0 for i in range(n)]
    if not config.intelligent:
        return ScoringResult(tuple(UnitScore(r, r) for r in recency), "off")
    weights = dict(config.weights)
    all_feats = list(all_feats)  # computed once here if lazy (the references read every unit)
    texts = [all_feats[pos].text for pos in candidates]

    method, semantic = "off", [0.0] * n
    if weights.get("semantic", 0.0) > 0 and n:
        sims = None
        if config.semantic and embeddings.available():
            sims = _embedded(query, texts, deadline)
            method = "embeddings" if sims is not None else method
        if sims is None:
            sims = _lexical(query, [all_feats[pos] for pos in candidates])
            method = "bm25"
        semantic = _minmax(sims)

    toin_values = [0.0] * n
    if toin is not None and weights.get("toin", 0.0) > 0:
        toin_values = toin_scores([all_feats[pos] for pos in candidates], toin)

    errors = [all_feats[pos].error for pos in candidates]
    references = (reference_scores(candidates, all_feats)
                  if weights.get("reference", 0.0) > 0 else [0.0] * n)

    total = sum(w for w in weights.values() if w > 0) or 1.0
    columns = (recency, semantic, toin_values, errors, references)  # in FACTORS order
    active = [(weights[f], column) for f, column in zip(FACTORS, columns) if weights.get(f, 0.0) > 0]
    scores = []
    for i in range(n):
        # sum() over the weighted factors in FACTORS order: the same floating-point sum (and on
        # 3.12 the same compensated summation) whatever the weights, so the same drop order.
        score = sum([w * column[i] for w, column in active])
        scores.append(UnitScore(score / total, recency[i], semantic[i], toin_values[i], errors[i],
                                references[i]))
    return ScoringResult(tuple(scores), method)
