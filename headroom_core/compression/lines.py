"""Line-level helpers shared by the line-based compressors: template keys, query terms, and
rendering kept lines with one in-place marker per omitted run.

Everything here works on whole texts with C-speed primitives (bytes.translate, str.find,
Counter) because a 100k-token output has ~10,000 lines and the budget is a few milliseconds.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
from collections import Counter
from typing import Callable, Sequence

from . import chunked
from .base import CompressContext

# Deleting digits and hex letters masks numbers, ids, hashes, timestamps and uuids at once:
# two lines share a key when they differ only in such characters. Keys are for grouping only
# (they are never shown); `display_template` makes the readable form of a few of them.
_KEY_DELETE = b"0123456789abcdefABCDEF"

_TS = (r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
       r"|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"
       r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}:\d{2}")
_MASK_RE = re.compile(
    r"(?:" + _TS + r")"
    r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|\b0x[0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b"
    r"|\d+(?:\.\d+)*")
_LEAD_TS_RE = re.compile(r"^[\[(]?(?:" + _TS + r")[\])]?[\s,|:-]*")
_STAR_RUN = re.compile(r"\*(?:[\s.:/,-]*\*)+")

_WORD_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:/@#+-]*[A-Za-z0-9_]|[A-Za-z0-9]")
_STOP = frozenset("""
a an and are as at be been but by can could did do does doing done for from get got had has
have how i if in into is it its just let like me my no not now of on or our out please see
should show so some than that the their them then there these they this those to too up us
use used using was we were what when where which while who why will with would you your
file files line lines log logs output result results error errors issue issues find look
check run running test tests code fix help tell give make need want found anything something
select from where order group limit offset interval insert update delete join values into desc
asc true false null none between having distinct count days hours minutes since until
""".split())


def split_lines(text: str) -> list[str]:
    return chunked.split_lines(text)


def line_keys(text: str) -> list[bytes]:
    """One grouping key per line (aligned with `text.split("\\n")`)."""
    return chunked.encoded_lines(text, _KEY_DELETE)


def line_starts(lines: Sequence[str]) -> list[int]:
    """Offset of each line's first character in the text the lines were split from."""
    # map/accumulate keep the loop in C: len(line) + 1 summed up, a slice of lines per call
    out = [0]
    last = len(lines) - 1
    for i in range(0, last, 1 << 14):
        lengths = map(operator.add, map(len, lines[i:min(i + (1 << 14), last)]), itertools.repeat(1))
        out.extend(itertools.islice(itertools.accumulate(lengths, initial=out[-1]), 1, None))
    return out


def display_template(line: str, width: int = 72) -> str:
    """A readable template of a line: leading timestamp dropped, variable parts as `*`."""
    body = _LEAD_TS_RE.sub("", line.strip(), count=1)
    body = _STAR_RUN.sub("*", _MASK_RE.sub("*", body))
    return body if len(body) <= width else body[: width - 1] + "…"


def similar_groups(lines: Sequence[str], idx: Sequence[int], share: float = 0.7) -> list[int]:
    """A group number for each line in `idx`: lines with as many words, the same first word,
    and at least `share` of their words equal once numbers and ids are masked fall together
    (`failed for user alice` and `failed for user bob`). Greedy, in order: deterministic."""
    buckets: dict[tuple[int, str], list[tuple[list[str], int]]] = {}
    out: list[int] = []
    next_id = 0
    for i in idx:
        words = _MASK_RE.sub("*", _LEAD_TS_RE.sub("", lines[i].strip(), count=1)).split()
        bucket = buckets.setdefault((len(words), words[0] if words else ""), [])
        for rep, gid in bucket:
            if sum(a == b for a, b in zip(rep, words)) >= share * len(words):
                out.append(gid)
                break
        else:
            if len(bucket) < 64:
                bucket.append((words, next_id))
            out.append(next_id)
            next_id += 1
    return out


def query_terms(query: str, limit: int = 24) -> list[str]:
    """Distinctive lower-case terms of the request (ids, names, paths; no common words)."""
    out: dict[str, None] = {}
    for m in _WORD_RE.finditer(query):
        word = m.group(0).strip(".:/-")
        low = word.lower()
        if len(low) < 3 or low in _STOP or low in out:
            continue
        distinctive = (any(c.isdigit() for c in word) or any(c in "_.:/@#-" for c in word)
                       or any(c.isupper() for c in word[1:]) or len(word) >= 5)
        if distinctive:
            out[low] = None
            if len(out) >= limit:
                break
    return list(out)


def term_line_hits(lower_text: str, starts: Sequence[int], term: str, cap: int) -> list[int]:
    """Indices of lines containing `term` (lower-case), at most `cap + 1` of them."""
    hits: list[int] = []
    for pos in chunked.find_all(lower_text, term):
        idx = bisect.bisect_right(starts, pos) - 1
        if not hits or hits[-1] != idx:
            hits.append(idx)
            if len(hits) > cap:
                break
    return hits


def query_line_hits(text: str, lines: Sequence[str], starts: Sequence[int], query: str,
                    max_share: float = 0.01, floor: int = 5, ceiling: int = 40,
                    lower: str | None = None) -> set[int]:
    """Lines matching distinctive query terms, rarest terms first. A term matching many lines
    keeps only a few of them, and all terms together keep at most a small share of the text.
    `lower`: the text lower-cased, if already made."""
    terms = query_terms(query)
    if not terms:
        return set()
    lower = chunked.lower(text) if lower is None else lower
    cap = max(floor, min(ceiling, int(len(lines) * max_share)))
    per_term = []
    for term in terms:
        hits = term_line_hits(lower, starts, term, cap)
        per_term.append(hits if len(hits) <= cap else hits[:2])
    keep: set[int] = set()
    total_cap = max(2 * cap, floor * 4)
    for hits in sorted(per_term, key=len):  # stable: equal counts keep the query's order
        if len(keep) + len(hits) > total_cap:
            break
        keep.update(hits)
    return keep


def absorb_small_gaps(lines: Sequence[str], kept: list[bool], max_chars: int = 110) -> None:
    """Keep omitted runs cheaper than the marker that would announce them (in place)."""
    n = len(lines)
    i = 0
    while i < n:
        if kept[i]:
            i += 1
            continue
        j = i
        size = 0
        while j < n and not kept[j]:
            size += len(lines[j]) + 1
            j += 1
            if size > max_chars:
                break
        if size <= max_chars and (j == n or kept[j]):
            for k in range(i, j):
                kept[k] = True
        while j < n and not kept[j]:
            j += 1
        i = j


def gap_summary(keys: Sequence[bytes], lines: Sequence[str], a: int, b: int,
                unit: str = "lines", top: int = 2, min_run: int = 60) -> str:
    """`lines 6-1204 omitted (1199 lines: 800× 'GET /api/* 200', 300× 'cache hit', …)`.

    Templates are listed only for long runs and only when they describe most of the run; when
    the line keys are too scattered (a test name on every line), lines are grouped by their
    first two words instead (`700× '=== RUN …'`).
    """
    count = b - a
    if count < min_run:  # the range says how many
        return f"lines {a + 1}-{b} omitted" if count > 1 else f"line {a + 1} omitted"
    head = f"lines {a + 1}-{b} omitted ({count} {unit}"
    freq = chunked.counter(keys[a:b]).most_common(top)
    if freq[0][1] >= 2 and sum(c for _, c in freq) * 2 >= count:
        seg = keys[a:b]
        shown = [(c, display_template(lines[a + seg.index(key)])) for key, c in freq if c >= 2]
    else:
        # the first two words of the keys (digits and hex already gone), shown from a real line;
        # a sample first, so runs where every line differs cost little
        step = max(1, count // 64)
        sample = Counter(b" ".join(k.split(None, 2)[:2]) for k in keys[a:b:step]).most_common(top)
        if sum(c for _, c in sample) * 2 < len(range(a, b, step)):
            return head + ")"
        words = [b" ".join(k.split(None, 2)[:2]) for k in keys[a:b]]
        coarse = chunked.counter(words).most_common(top)
        if coarse[0][1] < 2 or sum(c for _, c in coarse) * 2 < count or not coarse[0][0]:
            return head + ")"
        shown = [(c, " ".join(lines[a + words.index(w)].split(None, 2)[:2]) + " …") for w, c in coarse if c >= 2 and w]
    parts = [f"{c}× '{t}'" for c, t in shown]
    rest = count - sum(c for c, _ in shown)
    if rest:
        parts.append(f"{rest} other")
    return head + ": " + ", ".join(parts) + ")"


def render_kept(lines: Sequence[str], kept: Sequence[bool], ctx: CompressContext,
                describe: Callable[[int, int], str],
                indent: Callable[[int, int], str] | None = None) -> tuple[str, int]:
    """Kept lines in order, each omitted run replaced by one marker line; (text, omitted)."""
    out: list[str] = []
    omitted = 0
    n = len(lines)
    i = 0
    while i < n:
        if kept[i]:
            j = i
            while j < n and kept[j]:
                j += 1
            out.extend(lines[i:j])
        else:
            j = i
            while j < n and not kept[j]:
                j += 1
            omitted += j - i
            prefix = indent(i, j) if indent else ""
            out.append(prefix + ctx.marker(describe(i, j)))
        i = j
    return "\n".join(out), omitted
