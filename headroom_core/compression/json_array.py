"""JSON: large arrays cut down to the items the model needs; the result is still valid JSON.

Marker placement: an array that lost items starts with a
JSON string element holding the summary marker (what was kept, how many were omitted, and the
fields that every item shares, which are then left out of the kept items), and every run of
omitted items is replaced by a JSON string element holding a marker with its count and range.
A long string value (a log inside JSON) is compressed by its own kind and stays a JSON string.
Kept items are written exactly as the original spelled them.
"""

from __future__ import annotations

from json.decoder import scanstring
from typing import Any

from .base import CompressContext, Omitted, Rendering
from .chunked import lower, strip_bounds
from .json_select import select
from .jsonscan import array_spans, dumps_compact, object_members, scan_once, separator, skip_ws

MIN_ITEMS = 8
MIN_MAP = 30  # an object with this many record-valued members is cut like an array
WALK_DEPTH = 0  # objects this shallow are walked member by member; deeper ones are parsed first
BIG_SPAN = 800  # containers smaller than this (in characters) are written back untouched
BIG_STRING = 4000
MAX_DEPTH = 12
_CONST_SHOWN = 160


class _State:
    def __init__(self, ctx: CompressContext) -> None:
        self.ctx = ctx
        self.omitted = 0
        self.omitted_lines = 0

    def marker(self, summary: str) -> str:
        return dumps_compact(self.ctx.marker(summary))


def _describe_constants(constants: dict[str, Any], raw: dict[str, str]) -> str:
    """`name=value` for each field every item shares, values as the first item spells them."""
    parts = []
    for name, value in constants.items():
        shown = raw.get(name) or dumps_compact(value)
        if len(shown) > _CONST_SHOWN:
            shown = f"(the same {type(value).__name__} in every item, {len(shown)} chars, omitted)"
        parts.append(f"{name}={shown}")
    return ", ".join(parts)


def _render_string(value: str, st: _State) -> str | None:
    from .dispatch import compress_text  # late: dispatch imports this module

    inner = compress_text(value, st.ctx)
    if inner is None:
        return None
    st.omitted_lines += inner.omitted.count
    return dumps_compact(inner.text)


def _render_at(text: str, s: int, st: _State, depth: int) -> tuple[str | None, int]:
    """(rendering of the value starting at `s` or None if unchanged, the value's end).

    Arrays are walked element by element (each element parsed once by the C scanner), the
    root object member by member; any other object is parsed by the C scanner and walked
    again only when it is large enough to hold something worth cutting.
    """
    c = text[s]
    if depth <= MAX_DEPTH and c == "[":
        return _render_array(text, s, st, depth)
    if depth <= MAX_DEPTH and c == "{" and depth <= WALK_DEPTH:
        return _render_object(text, s, st, depth, drop={})
    try:
        value, end = scan_once(text, s)
    except StopIteration as e:
        raise ValueError(f"bad JSON value at {s}") from e
    return _render_parsed(text, s, end, value, st, depth), end


def _render_parsed(text: str, s: int, e: int, value: Any, st: _State, depth: int) -> str | None:
    if e - s < BIG_SPAN or depth > MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return _render_object(text, s, st, depth, drop={})[0]
    if isinstance(value, list):
        return _render_array(text, s, st, depth)[0]
    if isinstance(value, str) and e - s >= BIG_STRING:
        return _render_string(value, st)
    return None


_UNPARSED = object()


def _render_object(text: str, s: int, st: _State, depth: int, drop: dict) -> tuple[str | None, int]:
    i = skip_ws(text, s + 1)
    if text[i] == "}":
        return None, i + 1
    members: list[tuple[str, int, int, int, Any, str | None]] = []  # key, kstart, vstart, vend, value, inner
    sep = None
    while True:
        if text[i] != '"':
            raise ValueError(f"expected a key at {i}")
        key, kend = scanstring(text, i + 1)
        j = skip_ws(text, kend)
        if text[j] != ":":
            raise ValueError(f"expected ':' at {j}")
        vstart = skip_ws(text, j + 1)
        if text[vstart] == "{" and depth + 1 > WALK_DEPTH:
            try:
                value, vend = scan_once(text, vstart)
            except StopIteration as e:
                raise ValueError(f"bad JSON value at {vstart}") from e
            inner = None  # decided below: a record of a map, or a value of its own
        else:
            value = _UNPARSED
            inner, vend = _render_at(text, vstart, st, depth + 1)
        members.append((key, i, vstart, vend, value, inner))
        k = skip_ws(text, vend)
        c = text[k]
        if c == ",":
            nxt = skip_ws(text, k + 1)
            if sep is None:
                sep = text[vend:nxt]
            i = nxt
        elif c == "}":
            end = k + 1
            break
        else:
            raise ValueError(f"expected ',' or '}}' at {k}")
    if not drop and len(members) >= MIN_MAP and end - s >= BIG_SPAN and all(isinstance(m[4], dict) for m in members):
        return _render_map(text, s, end, members, sep or ",", st, depth), end
    parts: list[str] = []
    changed = False
    for key, kstart, vstart, vend, value, inner in members:
        if key in drop:
            changed = True
            continue
        if value is not _UNPARSED:
            inner = _render_parsed(text, vstart, vend, value, st, depth + 1)
        changed |= inner is not None
        parts.append(text[kstart:vstart] + (text[vstart:vend] if inner is None else inner))
    if not changed:
        return None, end
    lead = text[s + 1:members[0][1]]
    trail = text[members[-1][3]:end - 1]
    return "{" + lead + (sep or ",").join(parts) + trail + "}", end


def _render_map(text: str, s: int, end: int, members: list, sep: str, st: _State, depth: int) -> str | None:
    """An object used as a map of records (`{"id1": {...}, "id2": {...}, ...}`): members are
    chosen like array items; the summary and each omitted run become members of their own,
    `"_headroom"` and `"_headroom_omitted_<n>"`, holding markers."""
    spans = [(m[2], m[3]) for m in members]
    values = [m[4] for m in members]
    n = len(members)
    sel = select(values, text, lower(text, start=s, end=end), s, spans, st.ctx.query, st.ctx.harder,
                 fields=st.ctx.hint_fields, rate=st.ctx.retrieval_rate)
    keep = sorted(sel.keep)
    if len(keep) == n:
        return None
    st.omitted += n - len(keep)
    kv = text[members[0][1]:members[0][2]]
    kv = kv[kv.rindex(":"):]  # ":" (and any space) as the document writes it
    summary = _summary(n, keep, sel, {}, "members")
    parts = ['"_headroom"' + kv + st.marker(summary)]
    prev, gaps = -1, 0
    for i in keep:
        if i > prev + 1:
            gaps += 1
            parts.append(f'"_headroom_omitted_{gaps}"' + kv + st.marker(_gap(prev + 1, i, "members")))
        key, kstart, vstart, vend, value, _ = members[i]
        inner = _render_parsed(text, vstart, vend, value, st, depth + 1)
        parts.append(text[kstart:vstart] + (text[vstart:vend] if inner is None else inner))
        prev = i
    if prev < n - 1:
        parts.append(f'"_headroom_omitted_{gaps + 1}"' + kv + st.marker(_gap(prev + 1, n, "members")))
    return "{" + text[s + 1:members[0][1]] + sep.join(parts) + text[members[-1][3]:end - 1] + "}"


def _summary(n: int, keep: list[int], sel: Any, drop: dict, unit: str, raw_constants: dict | None = None) -> str:
    reasons: dict[str, int] = {}
    for i in keep:
        reasons[sel.keep[i]] = reasons.get(sel.keep[i], 0) + 1
    summary = f"{n - len(keep)} of {n} {unit} omitted — kept: " + ", ".join(f"{c} {why}" for why, c in reasons.items())
    if sel.duplicates:
        summary += f"; {sel.duplicates} {unit} are exact duplicates of others"
    if sel.files:
        summary += (f"; hits in {len(sel.files)} files, every file with its count: "
                    + ", ".join(f"{p} ({c})" for p, c in sel.files.items()))
    if sel.dropped_errors:
        summary += f"; {sel.dropped_errors} more {unit} with errors are among the omitted"
    if drop:
        summary += f"; all {n} {unit} have {_describe_constants(drop, raw_constants or {})} (left out of the {unit} below)"
    return summary


def _render_array(text: str, s: int, st: _State, depth: int) -> tuple[str | None, int]:
    spans, values, end = array_spans(text, s)
    n = len(spans)
    if end - s < BIG_SPAN or n == 0:
        return None, end
    if n < MIN_ITEMS:
        parts, changed = [], False
        for a, b in spans:
            inner = _render_at(text, a, st, depth + 1)[0] if b - a >= BIG_SPAN else None
            changed |= inner is not None
            parts.append(text[a:b] if inner is None else inner)
        if not changed:
            return None, end
        return "[" + text[s + 1:spans[0][0]] + separator(text, spans).join(parts) + text[spans[-1][1]:end - 1] + "]", end

    sel = select(values, text, lower(text, start=s, end=end), s, spans, st.ctx.query, st.ctx.harder,
                 fields=st.ctx.hint_fields, rate=st.ctx.retrieval_rate)
    keep = sorted(sel.keep)
    records = all(isinstance(v, dict) for v in values)
    drop = sel.constants if records else {}
    omitted = n - len(keep)
    if omitted == 0 and not drop:
        return None, end
    st.omitted += omitted
    raw = {m.key: text[m.value_span[0]:m.value_span[1]] for m in object_members(text, spans[0][0])[0]} if drop else {}
    summary = _summary(n, keep, sel, drop, "items", raw)
    parts = [st.marker(summary)]
    prev = -1
    for i in keep:
        if i > prev + 1:
            parts.append(st.marker(_gap(prev + 1, i, "items")))
        a, b = spans[i]
        if drop:
            item = _render_object(text, a, st, depth + 1, drop)[0]
        else:
            item = _render_at(text, a, st, depth + 1)[0] if b - a >= BIG_SPAN else None
        parts.append(text[a:b] if item is None else item)
        prev = i
    if prev < n - 1:
        parts.append(st.marker(_gap(prev + 1, n, "items")))
    sep = separator(text, spans)
    return "[" + text[s + 1:spans[0][0]] + sep.join(parts) + text[spans[-1][1]:end - 1] + "]", end


def _gap(a: int, b: int, unit: str) -> str:
    """Omitted items a..b-1 (0-based) as the reader counts them (1-based)."""
    return f"{unit} {a + 1}-{b} omitted ({b - a} {unit})" if b - a > 1 else f"{unit[:-1]} {a + 1} omitted"


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    s, e = strip_bounds(text)
    if s >= e or text[s] not in "[{":
        return None
    st = _State(ctx)
    try:
        body, end = _render_at(text, s, st, 0)
    except (ValueError, IndexError, RecursionError):
        return None
    if body is None or end != e:
        return None
    out = text[:s] + body + text[e:]
    if st.omitted:
        return Rendering(out, "json", Omitted(st.omitted, "items"))
    return Rendering(out, "json", Omitted(st.omitted_lines, "lines"))
