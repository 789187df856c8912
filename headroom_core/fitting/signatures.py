"""Output-structure signatures, and the fields a retrieval query asked about: how TOIN (toin.py)
tells one kind of tool output from another, whatever its content.

Two outputs of the same tool with the same shape (the same API endpoint, the same log format)
share a signature; a retrieval's query names JSON keys of the original, or terms.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

_QUOTED = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'")
_HEX = re.compile(r"\b(?:0x)?[0-9a-fA-F]{6,}\b")
_NUMBER = re.compile(r"\d+(?:[.:,]\d+)*")
_PATH = re.compile(r"\S*/\S*")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_SIG_LINES = 60


def _json_shape(value: Any, depth: int = 0) -> str:
    if isinstance(value, dict):
        if depth >= 3:
            return "{}"
        keys = sorted(value)[:40]
        return "{" + ",".join(f"{k}:{_json_shape(value[k], depth + 1)}" for k in keys) + "}"
    if isinstance(value, list):
        if depth >= 3 or not value:
            return "[]"
        return "[" + "|".join(sorted({_json_shape(v, depth + 1) for v in value[:3]})) + "]"
    if isinstance(value, bool) or value is None:
        return "b"
    return "s" if isinstance(value, str) else "n"


_TEMPLATE_CHARS = 256  # a template is the first words of a line; the masks are quadratic on
# a long run without whitespace (`_PATH` backtracks), and one regex call holds the GIL: a 50 KB
# line of truncated JSON took 3 s, 430 KB over 3 minutes, with the whole proxy frozen.


def _line_template(line: str) -> str:
    masked = _QUOTED.sub("S", line[:_TEMPLATE_CHARS])
    masked = _PATH.sub("P", masked)
    masked = _HEX.sub("H", masked)
    masked = _NUMBER.sub("N", masked)
    return " ".join(masked.split()[:3])


def output_signature(text: str) -> str:
    """A short, stable id of an output's structure: JSON key shape, or its line templates.

    Two outputs of the same tool with the same shape (the same API endpoint, the same log format)
    share it; contents do not matter.
    """
    stripped = text.lstrip()
    if stripped[:1] in ("{", "[") and len(text) < 8_000_000:
        try:
            shape = _json_shape(json.loads(text))
            return "json:" + hashlib.sha1(shape.encode()).hexdigest()[:12]
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            pass
    head = text[: _SIG_LINES * 4 * 2048]  # splitting a 10 MB output whole costs ~100k strings
    lines = [ln for ln in head.splitlines()[: _SIG_LINES * 4] if ln.strip()][:_SIG_LINES]
    templates = Counter(_line_template(ln) for ln in lines)
    top = sorted(t for t, _ in templates.most_common(6))
    return "text:" + hashlib.sha1("\n".join(top).encode("utf-8", "replace")).hexdigest()[:12]


def _json_keys(value: Any, out: set[str], depth: int = 0) -> None:
    if depth > 4:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(str(k).lower())
            _json_keys(v, out, depth + 1)
    elif isinstance(value, list):
        for v in value[:20]:
            _json_keys(v, out, depth + 1)


_STOP = frozenset("the and for with from that this what where which all any are was were not "
                  "show find get list give me of in on to is it".split())


def queried_fields(query: str, original: str | None = None) -> list[str]:
    """Fields a retrieval query asked about: JSON keys of the original it names, else its terms."""
    terms = [t.lower() for t in _WORD.findall(query)]
    terms = [t for t in terms if len(t) >= 2 and t not in _STOP]
    if original and original.lstrip()[:1] in ("{", "["):
        try:
            keys: set[str] = set()
            _json_keys(json.loads(original), keys)
            named = [t for t in terms if t in keys]
            if named:
                return list(dict.fromkeys(named))
        except (ValueError, RecursionError):
            pass
    return list(dict.fromkeys(terms))[:10]
