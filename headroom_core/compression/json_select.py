"""Which items of a large JSON array the model needs, decided from the items themselves.

Kept: the first and last few; every item that reports an error, a failure or a rare status;
items matching distinctive terms of the request; one representative per value of each
low-cardinality field; numeric outliers. Fields constant across all items are stated once
instead of repeated. Pure function of the array, the request and TOIN's hints for this output
(fixed per content hash; no randomness, no clock): items with an unusual value in a field the
model asked for before come first among the optional picks, and outputs the model often
retrieved keep a larger share.
"""

from __future__ import annotations

import bisect
import itertools
import math
import operator
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from . import chunked
from .lines import query_terms
from .severity import ERROR, severity

_STATUS_FIELDS = frozenset({"status", "state", "level", "severity", "conclusion", "result", "outcome",
                            "phase", "health", "status_code", "statuscode", "http_status", "reason"})
_ERROR_VALUE_WORDS = frozenset((
    "error", "errored", "failed", "failure", "fail", "fatal", "critical", "crashloopbackoff", "oomkilled",
    "imagepullbackoff", "errimagepull", "evicted", "timeout", "timed_out", "timedout", "rejected",
    "denied", "aborted", "exception", "panic", "unhealthy", "crashed", "broken"))
_ERROR_KEY_WORDS = frozenset((
    "error", "errors", "err", "exception", "failure", "failures", "stderr", "error_message",
    "errormessage", "fault", "traceback", "stacktrace", "stack_trace"))
# One pass over the lower-cased array finds every quoted error word; what follows it tells a
# key (`"error":`) from a value (`"failed"`).
_ERROR_TOKEN_RE = re.compile(
    '"(' + "|".join(sorted(_ERROR_VALUE_WORDS | _ERROR_KEY_WORDS, key=lambda w: (-len(w), w))) + ')"')
_TOKEN_MAX = 2 + max(map(len, _ERROR_VALUE_WORDS | _ERROR_KEY_WORDS))
_SCAN_WINDOW = 1 << 15  # characters one regex call may scan (it holds the GIL meanwhile: ~1 ms)
_EMPTY_STARTS = ("null", "false", '""', "[]", "{}", "0,", "0}", "0]")
_MISSING = object()


@dataclass
class Selection:
    keep: dict[int, str] = field(default_factory=dict)  # item index -> why
    constants: dict[str, Any] = field(default_factory=dict)  # field -> value in every item
    duplicates: int = 0
    dropped_errors: int = 0
    files: dict[str, int] = field(default_factory=dict)  # search hits: path -> item count

    def add(self, i: int, why: str) -> bool:
        if i in self.keep:
            return False
        self.keep[i] = why
        return True


def _item_of(starts: list[int], pos: int) -> int:
    return bisect.bisect_right(starts, pos) - 1


def _error_tokens(low: str):
    """`_ERROR_TOKEN_RE.finditer(low)`, window by window: the same matches (one is at most
    _TOKEN_MAX long, the pattern has no anchors, and each window resumes where the last match
    ended, as finditer does), but no single call scans a whole 10 MB array with the GIL held
    (~90 ms while the proxy's event loop waits, scripts/bench_loop.py)."""
    return chunked.finditer(_ERROR_TOKEN_RE, low, _TOKEN_MAX, chunk=_SCAN_WINDOW)


def error_items(low: str, offset: int, starts: list[int]) -> list[int]:
    """Items whose JSON (lower-cased, `low` starting at `offset`) reports an error or failure
    at any depth: a string value that is an error word, or an error-named key with a value."""
    found: set[int] = set()
    for m in _error_tokens(low):
        word = m.group(1)
        rest = low[m.end(): m.end() + 10].lstrip()
        if rest.startswith(":"):
            if word in _ERROR_KEY_WORDS:
                value = rest[1:].lstrip()
                if value and not value.startswith(_EMPTY_STARTS):
                    found.add(_item_of(starts, m.start() + offset))
        elif word in _ERROR_VALUE_WORDS:
            found.add(_item_of(starts, m.start() + offset))
    return sorted(i for i in found if i >= 0)


def _http_error(name: str, col: list[Any]) -> list[int]:
    """Top-level HTTP-style status fields with a 4xx/5xx value."""
    if str(name).lower() not in ("status", "status_code", "statuscode", "http_status", "code", "response_code"):
        return []
    return [i for i, v in enumerate(col) if type(v) is int and 400 <= v < 600]


def string_error_items(values: list[Any], low: str, offset: int, starts: list[int]) -> list[int]:
    """String items that read as error lines (candidates found by substring, then checked)."""
    candidates: set[int] = set()
    for word in ("error", "fail", "fatal", "exception", "panic", "traceback", "crit", "severe"):
        for pos in chunked.find_all(low, word):
            candidates.add(_item_of(starts, pos + offset))
    return sorted(i for i in candidates
                  if 0 <= i < len(values) and isinstance(values[i], str) and severity(values[i]) >= ERROR)


def query_items(low: str, offset: int, starts: list[int], query: str, n: int) -> list[int]:
    """Items matching a distinctive request term that few items contain."""
    cap = max(3, n // 50)
    out: set[int] = set()
    for term in query_terms(query):
        hits: list[int] = []
        for pos in chunked.find_all(low, term):
            if len(hits) > cap:
                break
            i = _item_of(starts, pos + offset)
            if not hits or hits[-1] != i:
                hits.append(i)
        if len(hits) <= cap:
            out.update(hits)
    return sorted(i for i in out if i >= 0)


def _fields(values: list[dict]) -> list[str]:
    names: dict[str, None] = {}
    for item in values:
        for key in item:
            if key not in names:
                names[key] = None
                if len(names) >= 60:
                    return list(names)
    return list(names)


def _column(values: list[dict], name: Any, default: Any = None) -> list[Any]:
    """`[v.get(name, default) for v in values]`, with the loop in C (a slice of items a call)."""
    out: list[Any] = []
    for i in range(0, len(values), _SLICE):
        out += map(dict.get, values[i:i + _SLICE], itertools.repeat(name), itertools.repeat(default))
    return out


def _all_fields(values: list[dict]) -> set:
    """Every field of every item (the union runs in C, a slice of items a call)."""
    out: set = set()
    for i in range(0, len(values), _SLICE):
        out.update(*values[i:i + _SLICE])
    return out


_SLICE = 1 << 13


_median = chunked.sorted_median


def _outliers(col: list[Any], name: str) -> list[tuple[int, str]]:
    """The two items furthest from the column's median (beyond 8 median absolute deviations)."""
    if type(col[0]) not in (int, float) and type(col[-1]) not in (int, float):
        return []
    if all(type(v) is int for v in col):  # the usual numeric column: the passes below run in C
        idx: Sequence[int] = range(len(col))
        xs = list(map(float, col))
    else:
        idx = [i for i, v in enumerate(col) if type(v) in (int, float) and math.isfinite(v)]
        xs = [float(col[i]) for i in idx]
    if len(xs) < 8:
        return []
    med = _median(xs)
    devs = list(map(abs, map(operator.sub, xs, itertools.repeat(med))))
    mad = _median(devs)
    if mad <= 0:
        return []
    far_at = itertools.compress(range(len(devs)), map(operator.gt, devs, itertools.repeat(8 * mad)))
    far = sorted(((devs[k] / mad, -idx[k]) for k in far_at), reverse=True)
    return [(-i, f"outlier {name}") for _, i in far[:2]]


def record_columns(values: list[dict], sel: Selection, harder: bool) -> tuple[list[int], list[tuple[int, str]]]:
    """Constants into `sel`; returns (HTTP error items, optional (index, why) picks in order)."""
    n = len(values)
    http_errors: list[int] = []
    rare: list[tuple[int, str]] = []
    reps: list[tuple[int, str]] = []
    outliers: list[tuple[int, str]] = []
    max_card = 4 if harder else 6
    rare_cap = max(2, n // 50)
    for name in _fields(values):
        col = _column(values, name, _MISSING)
        label = f"column {name}" if isinstance(name, int) else name
        first = col[0]
        if first is not _MISSING and col.count(first) == n:
            sel.constants[name] = first
            continue
        http_errors.extend(_http_error(name, col))
        outliers.extend(_outliers(col, label))
        try:
            counts = chunked.counter(col)
        except TypeError:  # lists or objects as values: no cardinality to speak of
            continue
        card = len(counts)
        if card > 20 or card < 2:
            continue
        low_name = str(name).lower()
        status_like = low_name in _STATUS_FIELDS or low_name.endswith(("_status", "_state", "status", "state"))
        # distinct values in order of first appearance (Counter keeps insertion order)
        for value, count in counts.items():
            i = col.index(value)
            if card <= max_card:
                reps.append((i, f"one per {label}"))
            if status_like and count <= rare_cap:
                k = -1
                for _ in range(count):
                    k = col.index(value, k + 1)
                    rare.append((k, f"rare {label}"))
    return http_errors, rare[: max(4, n // 20)] + reps + outliers


_EMPTY_VALUES = (None, "", 0, False)
MAX_HINT_CARD = 20  # a hinted field with more distinct values (ids, timestamps) picks nothing


def _is_empty(value: Any) -> bool:
    return any(value is e or (type(value) is type(e) and value == e) for e in _EMPTY_VALUES)


def hinted_picks(values: list[dict], fields: tuple[str, ...]) -> list[tuple[int, str]]:
    """One item per value of each asked-for field (matched case-insensitively) that differs
    from the field's most common value and is not empty, in order of first appearance."""
    wanted = {f.lower() for f in fields}
    picks: list[tuple[int, str]] = []
    for name in _fields(values):
        if str(name).lower() not in wanted:
            continue
        col = _column(values, name, _MISSING)
        try:
            counts = chunked.counter(col)
        except TypeError:  # lists or objects as values
            continue
        if not 2 <= len(counts) <= MAX_HINT_CARD:
            continue
        usual = counts.most_common(1)[0][0]
        for value in counts:
            if value is _MISSING or value == usual or _is_empty(value):
                continue
            picks.append((col.index(value), f"{name} asked for before"))
    return picks


_PATH_FIELDS = ("path", "file", "filename", "file_path", "filepath", "uri", "location")


def _file_picks(values: list[dict], sel: Selection) -> list[tuple[int, str]]:
    """Search hits as JSON (items naming a file): count the items per file into `sel.files`
    and return one item per file, files in order of appearance, as picks."""
    present = _all_fields(values)
    for name in _PATH_FIELDS:
        if name not in present:
            continue  # all None: not the path field
        col = _column(values, name)
        paths = [p for p in col if isinstance(p, str) and ("/" in p or "." in p) and " " not in p]
        if len(paths) >= 0.9 * len(values):
            break
    else:
        return []
    counts = chunked.counter([p for p in col if isinstance(p, str)])
    if len(counts) == len(values) and len(values) > 200:
        return []  # a listing of distinct files rather than hits in files
    sel.files = dict(counts)
    first_of: dict[str, int] = {}
    for i, p in enumerate(col):
        if isinstance(p, str) and p not in first_of:
            first_of[p] = i
    return [(i, "one per file") for i in first_of.values()]


def select(values: list[Any], text: str, low: str, offset: int, spans: list[tuple[int, int]],
           query: str, harder: bool, *, fields: tuple[str, ...] = (), rate: float = 0.0) -> Selection:
    """`values` and `spans` are the items of the array in `text`; `low` is the array's text
    lower-cased, starting at `offset` (for the substring searches). `fields` and `rate` are
    TOIN's hints (asked-for fields, retrieval rate in [0,1])."""
    starts = [a for a, _ in spans]

    def raw(i: int) -> str:
        a, b = spans[i]
        return text[a:b]

    n = len(values)
    sel = Selection()
    first, last = (2, 1) if harder else (3, 2)
    records = all(isinstance(v, dict) for v in values)
    width = len(values[0]) if isinstance(values[0], list) else 0
    rows = not records and width >= 2 and all(isinstance(v, list) and len(v) == width for v in values)
    containers = records or all(isinstance(v, (dict, list)) for v in values)
    errs = error_items(low, offset, starts) if containers else string_error_items(values, low, offset, starts)
    cap = max(10, n // 10) if harder else max(20, n // 5)
    if len(errs) > cap:
        sel.dropped_errors = len(errs) - cap
        errs = errs[: cap - cap // 3] + errs[len(errs) - cap // 3:]
    for i in errs:
        sel.add(i, "error")
    for i in query_items(low, offset, starts, query, n):
        sel.add(i, "matches the request")
    for i in list(range(min(first, n))) + list(range(max(0, n - last), n)):
        sel.add(i, "first/last")
    if records:
        http_errors, optional = record_columns(values, sel, harder)
    elif rows:  # rows as arrays: columns by position; nothing is elided from a positional row
        http_errors, optional = record_columns([dict(enumerate(v)) for v in values], Selection(), harder)
    else:
        http_errors, optional = [], []
    for i in http_errors[:cap]:
        sel.add(i, "error")
    if records:
        optional = hinted_picks(values, fields) + _file_picks(values, sel) + optional
    # outputs the model keeps coming back for keep up to three times the share
    budget = (spans[-1][1] - spans[0][0]) * (0.04 if harder else 0.08) * (1.0 + 2.0 * min(1.0, max(0.0, rate)))
    used = sum(spans[i][1] - spans[i][0] for i in sel.keep)
    seen_raw = {raw(i) for i in sel.keep}
    for i, why in optional:
        if used >= budget:
            break
        if i in sel.keep or raw(i) in seen_raw:
            continue
        sel.add(i, why)
        seen_raw.add(raw(i))
        used += spans[i][1] - spans[i][0]
    # distinct items by the hash of their text: no copy of every item is held at once
    sel.duplicates = n - len({hash(raw(i)) for i in range(n)})
    return sel
