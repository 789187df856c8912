"""BM25 ranking of short documents (lines of a log, items of a JSON array) against a query.

Plain Okapi BM25 (k1=1.2, b=0.75) over lower-case word tokens; identifiers are indexed whole
and by their parts (`retry_budget` → `retry_budget`, `retry`, `budget`). No dependencies.
Ties are broken by position, so the ranking is deterministic.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

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


def rank(docs: Sequence[str], query: str, limit: int = 20) -> list[tuple[int, float]]:
    """(index, score) of the best `limit` documents with a positive score, best first.

    Document length is measured in characters (a common BM25 variant), so only documents that
    contain a query term as a substring need tokenizing.
    """
    terms = list(dict.fromkeys(tokenize(query)))
    if not terms or not docs:
        return []
    wanted = set(terms)
    n = len(docs)
    avg = (sum(len(d) for d in docs) / n) or 1.0
    candidates: list[tuple[int, Counter[str]]] = []
    df: Counter[str] = Counter()
    for i, doc in enumerate(docs):
        low = doc.lower()
        if not any(t in low for t in terms):
            continue
        tf = Counter(t for t in tokenize(low) if t in wanted)
        if tf:
            candidates.append((i, tf))
            df.update(tf.keys())
    idf = {t: math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) for t in df}
    scored = []
    for i, tf in candidates:
        norm = K1 * (1 - B + B * len(docs[i]) / avg)
        score = sum(idf[t] * c * (K1 + 1) / (c + norm) for t, c in tf.items())
        if score > 0:
            scored.append((i, score))
    scored.sort(key=lambda x: (-x[1], x[0]))
    return scored[:limit]
