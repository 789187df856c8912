"""JSON scanning with positions: the raw span of every element of an array and of every member
of an object, so kept items are written back exactly as the original spelled them (numbers,
escapes, key order) and only the chosen containers are rebuilt.

Built on the json module's C scanner (`scan_once`), one call per element.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from json.decoder import scanstring
from typing import Any

from ..jsonfmt import decode_text
from .chunked import release_later

_DECODER = json.JSONDecoder()
_SCAN = _DECODER.scan_once
scan_once = _SCAN
_WS = re.compile(r"[ \t\n\r]*")
_WS_CHARS = " \t\n\r"


@dataclass(frozen=True)
class Parsed:
    value: Any


_cache = threading.local()


def parse_json(text: str) -> Parsed | None:
    """The parsed document, or None when `text` is not one JSON value.

    The last result is kept per thread, so detection and the JSON compressor parse once.
    """
    last = getattr(_cache, "last", None)
    if last is not None and last[0] is text:
        return last[1]
    try:  # a large text piece by piece: one C call would hold the GIL for all of it
        result: Parsed | None = Parsed(decode_text(text))
    except (ValueError, RecursionError):
        result = None
    _cache.last = (text, result)
    return result


def forget() -> None:
    """Drop the cached document (a large one should not outlive its compression)."""
    _cache.last = None


def skip_ws(text: str, i: int) -> int:
    return _WS.match(text, i).end()


def array_spans(text: str, start: int) -> tuple[list[tuple[int, int]], list[Any], int]:
    """Spans and values of the elements of the array at `start` (a '['), and its end."""
    i = skip_ws(text, start + 1)
    spans: list[tuple[int, int]] = []
    values: list[Any] = []
    if text[i] == "]":
        return spans, values, i + 1
    scan = _SCAN
    ws = _WS.match
    while True:
        try:
            value, end = scan(text, i)
        except StopIteration as e:
            raise ValueError(f"bad JSON value at {i}") from e
        spans.append((i, end))
        values.append(value)
        c = text[end]
        if c == "," and text[end + 1] not in _WS_CHARS:  # compact JSON: no whitespace to skip
            i = end + 1
            continue
        i = ws(text, end).end()
        c = text[i]
        if c == ",":
            i = ws(text, i + 1).end()
        elif c == "]":
            return release_later(spans), release_later(values), i + 1
        else:
            raise ValueError(f"expected ',' or ']' at {i}")


@dataclass(frozen=True)
class Member:
    key: str
    key_span: tuple[int, int]  # the quoted key as written
    value_span: tuple[int, int]
    value: Any


def object_members(text: str, start: int) -> tuple[list[Member], int]:
    """Members of the object at `start` (a '{') with their raw spans, and its end."""
    i = skip_ws(text, start + 1)
    members: list[Member] = []
    if text[i] == "}":
        return members, i + 1
    while True:
        if text[i] != '"':
            raise ValueError(f"expected a key at {i}")
        key, kend = scanstring(text, i + 1)
        j = skip_ws(text, kend)
        if text[j] != ":":
            raise ValueError(f"expected ':' at {j}")
        vstart = skip_ws(text, j + 1)
        try:
            value, vend = _SCAN(text, vstart)
        except StopIteration as e:
            raise ValueError(f"bad JSON value at {vstart}") from e
        members.append(Member(key, (i, kend), (vstart, vend), value))
        i = skip_ws(text, vend)
        c = text[i]
        if c == ",":
            i = skip_ws(text, i + 1)
        elif c == "}":
            return members, i + 1
        else:
            raise ValueError(f"expected ',' or '}}' at {i}")


def separator(text: str, spans: list[tuple[int, int]], default: str = ",") -> str:
    """The text between the first two elements as written (`,` or `, ` or `,\\n  `)."""
    if len(spans) < 2:
        return default
    return text[spans[0][1]:spans[1][0]]


def dumps_compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def largest_array(text: str, max_depth: int = 6) -> list[str] | None:
    """Raw texts of the items of the longest array in a JSON document (None if none)."""
    parsed = parse_json(text)
    forget()
    if parsed is None:
        return None
    best: list[str] | None = None

    def visit(start: int, value: Any, depth: int) -> None:
        nonlocal best
        if depth > max_depth:
            return
        if isinstance(value, list):
            spans, values, _ = array_spans(text, start)
            if len(spans) >= 2 and (best is None or len(spans) > len(best)):
                best = [text[a:b] for a, b in spans]
            for (a, b), v in zip(spans, values):
                if isinstance(v, (list, dict)) and b - a > 200:
                    visit(a, v, depth + 1)
        elif isinstance(value, dict):
            members, _ = object_members(text, start)
            for m in members:
                if isinstance(m.value, (list, dict)):
                    visit(m.value_span[0], m.value, depth + 1)

    visit(skip_ws(text, 0), parsed.value, 0)
    return best
