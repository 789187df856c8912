"""BM25 ranking of short documents (lines of a log, items of a JSON array) against a query.

Plain Okapi BM25 (k1=1.2, b=0.75) over lower-case word tokens; identifiers are indexed whole
and by their parts (`retry_budget` → `retry_budget`, `retry`, `budget`). No dependencies.
Ties are broken by position, so the ranking is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Callable, Iterable, Sequence

_TOKEN_RE = re.compile(r"[a-z0-9][a-z0-9_.\-/:@]*[a-z0-9]|[a-z0-9]")
_PART_RE = re.compile(r"[a-z]+|[0-9]+")

K1 = 1.2
B = 0.75


def tokenize(text: str) -> list[str]:
    out: list[str] = []
    for tok in _TOKEN_RE.findall(text.lower()):
        out.append(tok)
        parts = _PART_RE.findall(tok)
        if len(parts) > 1:
            out.extend(parts)
    return out


def term_counts(text: str) -> dict[str, int]:
    """`Counter(tokenize(text))`, in the same order (each term where it first appears), made
    from the distinct tokens: a long output repeats its words, and splitting each occurrence
    into parts again was most of the cost."""
    counts: dict[str, int] = {}
    get = counts.get
    for tok, n in Counter(_TOKEN_RE.findall(text.lower())).items():
        counts[tok] = get(tok, 0) + n
        if tok.isalpha() or tok.isdigit():
            continue  # one part: the token itself
        parts = _PART_RE.findall(tok)
        if len(parts) > 1:
            for part in parts:
                counts[part] = get(part, 0) + n
    return counts


def _scores(matches: Iterable[tuple[int, list[tuple[str, int]]]], lengths: Sequence[int], n: int,
            limit: int) -> list[tuple[int, float]]:
    """BM25 of the documents that contain query terms: (index, [(term, count)] in the order the
    terms first appear in the document) — that order fixes how each score is summed."""
    avg = (sum(lengths) / n) or 1.0
    found = list(matches)
    df: Counter[str] = Counter()
    for _, tf in found:
        df.update([t for t, _ in tf])
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
    scored = []
    for i, tf in found:
        norm = K1 * (1 - B + B * lengths[i] / avg)
        score = sum([idf[t] * c * (K1 + 1) / (c + norm) for t, c in tf])
        if score > 0:
            scored.append((i, score))
    scored.sort(key=lambda x: (-x[1], x[0]))
    return scored[:limit]


def _rank(query: str, lengths: list[int],
          terms_in: Callable[[int, list[str], set[str]], list[tuple[str, int]]],
          limit: int) -> list[tuple[int, float]]:
    """What `rank` and `rank_counted` share: the query's terms, then BM25 over each document's
    (term, count) pairs as `terms_in(index, terms, wanted)` gives them."""
    terms = list(dict.fromkeys(tokenize(query)))
    n = len(lengths)
    if not terms or not n:
        return []
    wanted = set(terms)
    found = ((i, tf) for i in range(n) if (tf := terms_in(i, terms, wanted)))
    return _scores(found, lengths, n, limit)


def rank(docs: Sequence[str], query: str, limit: int = 20) -> list[tuple[int, float]]:
    """(index, score) of the best `limit` documents with a positive score, best first.

    Document length is measured in characters (a common BM25 variant), so only documents that
    contain a query term as a substring need tokenizing.
    """
    def terms_in(i: int, terms: list[str], wanted: set[str]) -> list[tuple[str, int]]:
        low = docs[i].lower()
        if not any(t in low for t in terms):
            return []
        return [(t, c) for t, c in term_counts(low).items() if t in wanted]

    return _rank(query, [len(d) for d in docs], terms_in, limit)


class CountedDoc:
    """A document counted once for many `rank_counted` calls: its `term_counts` and length."""

    __slots__ = ("counts", "length")

    def __init__(self, text: str) -> None:
        self.counts = term_counts(text)
        self.length = len(text)

    def matches(self, wanted: set[str]) -> list[tuple[str, int]]:
        """(term, count) of the wanted terms it holds, in the order they first appear in it."""
        if self.counts.keys().isdisjoint(wanted):
            return []
        return [(t, c) for t, c in self.counts.items() if t in wanted]


def rank_counted(docs: Sequence[CountedDoc], query: str, limit: int = 20) -> list[tuple[int, float]]:
    """`rank` over documents counted beforehand: the same scores as `rank` on their texts,
    without tokenizing them again."""
    return _rank(query, [d.length for d in docs], lambda i, _terms, wanted: docs[i].matches(wanted),
                 limit)
