"""Exact token counts of large texts in bounded memory, and a memo so a re-sent text is free.

tiktoken returns every token as a Python int; for a 10 MB output that list alone is ~90 MB.
Counting in chunks keeps memory flat and gives the same total, because chunks are cut only
where the tokenizer's pre-split pattern always starts a new piece, so no piece (hence no
token) spans a cut: right after a newline followed by a character that is not whitespace or
`/`, or (for text without newlines, such as compact JSON) between two ASCII punctuation
characters other than `/` and an ASCII letter, as in `},{"id` (the punctuation run is one
piece that ends at the letter). Checked against whole-text counts in test_counting.py.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from .. import tokens

CHUNK = 1 << 18  # characters per encode call
_SEARCH = 1 << 16  # how far past the target a safe cut is looked for
_PUNCT_CUT_RE = re.compile(r"(?<=[!-.:-@\[-`{-~]{2})(?=[A-Za-z])")


def safe_cuts(text: str, chunk: int = CHUNK) -> list[int]:
    """Offsets where `text` can be split without changing its token count."""
    cuts = [0]
    n = len(text)
    target = chunk
    while target < n:
        pos = target
        limit = min(n - 1, target + _SEARCH)
        cut = -1
        while pos < limit:
            j = text.find("\n", pos, limit)
            if j == -1 or j + 1 >= n:
                break
            nxt = text[j + 1]
            if not nxt.isspace() and nxt != "/":
                cut = j + 1
                break
            pos = j + 1
        if cut == -1:
            m = _PUNCT_CUT_RE.search(text, target, limit)
            cut = m.start() if m else -1
        if cut == -1:
            target += chunk  # no safe cut nearby: this chunk grows
            continue
        cuts.append(cut)
        target = cut + chunk
    cuts.append(n)
    return cuts


def count_exact(text: str, model: str | None = None) -> int:
    """`tokens.count_text(text, model)`, in chunks for large texts."""
    if len(text) <= CHUNK:
        return tokens.count_text(text, model)
    cuts = safe_cuts(text)
    return sum(tokens.count_text(text[a:b], model) for a, b in zip(cuts, cuts[1:]))


class CountMemo:
    """Token counts by (content hash, model): a history re-sent every turn is counted once."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._data: OrderedDict[tuple[str, str | None], int] = OrderedDict()
        self._lock = threading.Lock()

    def count(self, digest: str, text: str, model: str | None) -> int:
        key = (digest, model)
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
                return value
        value = count_exact(text, model)
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


COUNTS = CountMemo()
