"""Whole-text string operations done piece by piece, with the same results.

The optimiser runs in a worker thread beside the proxy's event loop. A C-level call such as
`str.split`, `str.lower` or a regex scan keeps the GIL for its whole run: on a 10 MB tool output
that is 10-30 ms during which no other request moves (scripts/bench_loop.py). Each function here
makes calls over at most CHUNK characters, so the interpreter can switch threads between them.
Pieces are cut right after a newline where a result could depend on the surroundings (case
mapping of a final sigma looks at the letters around it; a line never spans a cut).

Freeing is a long call too: dropping a list of 100,000 parsed items frees them all at once
(~25 ms). Lists registered with `release_later` are emptied a slice at a time by `release`.
And so is the cyclic garbage collector: parsing 100,000 items makes it run a full collection
over the whole process (~50 ms in the proxy); `gc_paused` holds it off meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import itertools
import re
import sys
import threading
from collections import Counter
from typing import Hashable, Iterable, Iterator, Sequence

CHUNK = 1 << 18  # characters per C-level call (~0.1-1 ms each)


def line_pieces(text: str, chunk: int = CHUNK, start: int = 0,
                end: int | None = None) -> Iterator[tuple[int, int]]:
    """(start, end) of consecutive pieces of text[start:end], each ending right after a newline
    (the last one at `end`), about `chunk` characters long. A line longer than `chunk` is one
    piece."""
    n = len(text) if end is None else end
    a = start
    while a < n:
        b = a + chunk
        if b >= n:
            yield a, n
            return
        cut = text.rfind("\n", a, b)
        if cut == -1:
            cut = text.find("\n", b, n)
            if cut == -1:
                yield a, n
                return
        yield a, cut + 1
        a = cut + 1


def split_lines(text: str, chunk: int = CHUNK) -> list[str]:
    """`text.split("\\n")`."""
    if len(text) <= chunk:
        return text.split("\n")
    out: list[str] = []
    for a, b in line_pieces(text, chunk):
        piece = text[a:b]
        out.extend(piece[:-1].split("\n") if piece.endswith("\n") else piece.split("\n"))
    if text.endswith("\n"):
        out.append("")
    return release_later(out)


def encoded_lines(text: str, delete: bytes = b"", chunk: int = CHUNK) -> list[bytes]:
    """`text.encode("utf-8", "surrogatepass").translate(None, delete).split(b"\\n")`."""
    if len(text) <= chunk:
        return text.encode("utf-8", "surrogatepass").translate(None, delete).split(b"\n")
    out: list[bytes] = []
    for a, b in line_pieces(text, chunk):
        piece = text[a:b]
        ends = piece.endswith("\n")
        data = (piece[:-1] if ends else piece).encode("utf-8", "surrogatepass").translate(None, delete)
        out.extend(data.split(b"\n"))
    if text.endswith("\n"):
        out.append(b"")
    return release_later(out)


def lower(text: str, chunk: int = CHUNK, start: int = 0, end: int | None = None) -> str:
    """`text[start:end].lower()` (the join at the end is one copy, the cheapest of these calls)."""
    end = len(text) if end is None else end
    if end - start <= chunk:
        return text[start:end].lower()
    return "".join([text[a:b].lower() for a, b in line_pieces(text, chunk, start, end)])


def find_all(text: str, needle: str, start: int = 0, end: int | None = None,
             chunk: int = CHUNK) -> Iterator[int]:
    """Offsets of the non-overlapping occurrences of `needle` in text[start:end], in order."""
    n = len(text) if end is None else min(end, len(text))
    m = len(needle)
    if not m:
        raise ValueError("empty needle")
    pos = start
    while pos <= n - m:
        limit = min(n, pos + chunk + m - 1)
        found = text.find(needle, pos, limit)
        if found == -1:
            pos = limit - m + 1
            continue
        yield found
        pos = found + m


def contains(text: str, needle: str, chunk: int = CHUNK) -> bool:
    """`needle in text`."""
    return next(find_all(text, needle, chunk=chunk), -1) != -1


def finditer(pattern: re.Pattern[str], text: str, max_len: int, pos: int = 0, endpos: int | None = None,
             chunk: int = CHUNK) -> Iterator[re.Match[str]]:
    """`pattern.finditer(text, pos, endpos)`, for a pattern whose matches (lookarounds
    included) span at most `max_len` characters: each call may read one window of `chunk`
    characters plus that much more, and resumes where the last match ended, as finditer does.
    A pattern that can match the empty string is not supported."""
    n = len(text) if endpos is None else min(endpos, len(text))
    end = pos
    for window in range(pos, n, chunk):
        limit = window + chunk
        for m in pattern.finditer(text, max(window, end), min(n, limit + max_len)):
            if m.start() >= limit:
                break
            end = m.end()
            yield m


def sorted_median(xs: Sequence[float], chunk: int = 1 << 17) -> float:
    """The median of `xs` (the mean of the middle two for an even count). Up to `chunk` items
    one sort (~10 ms for 100,000); beyond, slices are sorted one C call each and merged lazily
    up to the middle (the merge runs in Python: slower, but never one long call)."""
    n = len(xs)
    if n <= chunk:
        s = sorted(xs)
        m = n // 2
        return s[m] if n % 2 else (s[m - 1] + s[m]) / 2
    runs = [sorted(xs[i:i + chunk]) for i in range(0, n, chunk)]
    merged = heapq.merge(*runs)
    m = n // 2
    prev = next(itertools.islice(merged, m - 1, None)) if m else None
    mid = next(merged)
    return mid if n % 2 else (prev + mid) / 2


def counter(items: Iterable[Hashable] | Sequence[Hashable], chunk: int = 1 << 13) -> Counter:
    """`Counter(items)`, counted a slice at a time."""
    counts: Counter = Counter()
    if not isinstance(items, Sequence):
        items = list(items)
    for i in range(0, len(items), chunk):
        counts.update(items[i:i + chunk])
    return counts


def strip_bounds(text: str, step: int = 4096) -> tuple[int, int]:
    """(start, end) such that text[start:end] == text.strip(), without copying the text."""
    n = len(text)
    start = 0
    while start < n:
        head = text[start:start + step]
        skipped = len(head) - len(head.lstrip())
        start += skipped
        if skipped < len(head):
            break
    end = n
    while end > start:
        back = text[max(start, end - step):end]
        kept = len(back.rstrip())
        end -= len(back) - kept
        if kept:
            break
    return start, end


_pending = threading.local()
RELEASE_SLICE = 1 << 13  # items freed per call


def release_later(items: list) -> list:
    """Register a large list (lines, parsed items) built for one compression; returns it."""
    if len(items) > RELEASE_SLICE:
        held = getattr(_pending, "lists", None)
        if held is None:
            held = _pending.lists = []
        held.append(items)
    return items


def mark() -> int:
    """How many lists are registered now (for `release(since=...)` in a nested call)."""
    return len(getattr(_pending, "lists", ()))


def release(since: int = 0) -> None:
    """Empty the lists registered after `since` a slice at a time, once nothing else holds
    them (a list someone still uses is only let go of, never emptied)."""
    held = getattr(_pending, "lists", None)
    while held and len(held) > since:
        items = held.pop()
        if sys.getrefcount(items) > 2:  # this name and getrefcount's argument
            continue
        for end in range(len(items), 0, -RELEASE_SLICE):
            del items[max(0, end - RELEASE_SLICE):end]


_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused(active: bool = True) -> Iterator[None]:
    """No cyclic garbage collection while the block runs (in any thread: the collector is
    process-wide), as long as any such block runs; then it is switched back on if it was on.
    The objects made meanwhile are freed by reference counting as usual; cycles among them
    wait for the next collection."""
    global _gc_holders, _gc_was_enabled
    if not active:
        yield
        return
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()
