"""JSON: large arrays cut down to the items the model needs; the result is still valid JSON.

Marker placement: an array that lost items starts with a
JSON string element holding the summary marker (what was kept, how many were omitted, and the
fields that every item shares, which are then left out of the kept items), and every run of
omitted items is replaced by a JSON string element holding a marker with its count and range.
A long string value (a log inside JSON) is compressed by its own kind and stays a JSON string.
Kept items are written exactly as the original spelled them.
"""

from __future__ import annotations

import json
from json.decoder import scanstring
from typing import Any

from .base import CompressContext, Omitted, Rendering
from .json_select import select
from .jsonscan import array_spans, dumps_compact, object_members, scan_once, separator, skip_ws

MIN_ITEMS = 8
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

    Objects and arrays near the top are walked member by member; every other value is parsed
    once by the C scanner, so the whole document is read about once.
    """
    c = text[s]
    if depth <= MAX_DEPTH and c == "[":
        return _render_array(text, s, st, depth)
    if depth <= MAX_DEPTH and c == "{":
        return _render_object(text, s, st, depth, drop={})
    try:
        value, end = scan_once(text, s)
    except StopIteration as e:
        raise ValueError(f"bad JSON value at {s}") from e
    if isinstance(value, str) and end - s >= BIG_STRING:
        return _render_string(value, st), end
    return None, end


def _render_object(text: str, s: int, st: _State, depth: int, drop: dict) -> tuple[str | None, int]:
    i = skip_ws(text, s + 1)
    if text[i] == "}":
        return None, i + 1
    parts: list[str] = []
    changed = False
    first_key = i
    sep = None
    while True:
        if text[i] != '"':
            raise ValueError(f"expected a key at {i}")
        key, kend = scanstring(text, i + 1)
        j = skip_ws(text, kend)
        if text[j] != ":":
            raise ValueError(f"expected ':' at {j}")
        vstart = skip_ws(text, j + 1)
        inner, vend = _render_at(text, vstart, st, depth + 1)
        if key in drop:
            changed = True
        else:
            changed |= inner is not None
            parts.append(text[i:vstart] + (text[vstart:vend] if inner is None else inner))
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
    if not changed:
        return None, end
    lead = text[s + 1:first_key]
    trail = text[vend:end - 1]
    return "{" + lead + (sep or ",").join(parts) + trail + "}", end


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

    sel = select(values, text, text[s:end].lower(), s, spans, st.ctx.query, st.ctx.harder)
    keep = sorted(sel.keep)
    records = all(isinstance(v, dict) for v in values)
    drop = sel.constants if records else {}
    omitted = n - len(keep)
    if omitted == 0 and not drop:
        return None, end
    st.omitted += omitted
    reasons: dict[str, int] = {}
    for i in keep:
        reasons[sel.keep[i]] = reasons.get(sel.keep[i], 0) + 1
    summary = f"{omitted} of {n} items omitted — kept: " + ", ".join(f"{c} {why}" for why, c in reasons.items())
    if sel.duplicates:
        summary += f"; {sel.duplicates} items are exact duplicates of others"
    if sel.files:
        summary += (f"; hits in {len(sel.files)} files, every file with its count: "
                    + ", ".join(f"{p} ({c})" for p, c in sel.files.items()))
    if sel.dropped_errors:
        summary += f"; {sel.dropped_errors} more items with errors are among the omitted"
    if drop:
        raw = {m.key: text[m.value_span[0]:m.value_span[1]] for m in object_members(text, spans[0][0])[0]}
        summary += f"; all {n} items have {_describe_constants(drop, raw)} (left out of the items below)"
    parts = [st.marker(summary)]
    prev = -1
    for i in keep:
        if i > prev + 1:
            parts.append(st.marker(_gap(prev + 1, i)))
        a, b = spans[i]
        if drop:
            item = _render_object(text, a, st, depth + 1, drop)[0]
        else:
            item = _render_at(text, a, st, depth + 1)[0] if b - a >= BIG_SPAN else None
        parts.append(text[a:b] if item is None else item)
        prev = i
    if prev < n - 1:
        parts.append(st.marker(_gap(prev + 1, n)))
    sep = separator(text, spans)
    return "[" + text[s + 1:spans[0][0]] + sep.join(parts) + text[spans[-1][1]:end - 1] + "]", end


def _gap(a: int, b: int) -> str:
    """Omitted items a..b-1 (0-based) as the reader counts them (1-based)."""
    return f"items {a + 1}-{b} omitted ({b - a} items)" if b - a > 1 else f"item {a + 1} omitted"


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    s = len(text) - len(text.lstrip())
    e = len(text.rstrip())
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
    json.loads(out)  # a rendering that is not JSON is a bug; the engine keeps the original
    if st.omitted:
        return Rendering(out, "json", Omitted(st.omitted, "items"))
    return Rendering(out, "json", Omitted(st.omitted_lines, "lines"))
