"""The one marker format that announces an omission in place, and finding markers in text.

A marker is a single line:

    [headroom: 88 of 100 items omitted — errors kept; call headroom_retrieve(hash="3f9c0a1b2c3d4e5f") for the rest]

Inside JSON output a marker is a JSON string element (or value), so its quotes appear escaped
(`hash=\\"3f9c…\\"`); `find_markers` accepts both spellings. The hash is a prefix of the sha256
of the original (at least 16 hex characters) under which the CCR store keeps it.
"""

from __future__ import annotations

import re

from .chunked import contains

RETRIEVE_TOOL = "headroom_retrieve"
HASH_LEN = 16  # hex characters of sha256 shown in markers and used as the CCR key

_MARKER_RE = re.compile(r'\[headroom: [^\n]*?call headroom_retrieve\(hash=\\?"([0-9a-f]{16,64})\\?"\)')
_UNSAFE = str.maketrans({"\n": " ", "\r": " "})


def make_marker(summary: str, hash: str) -> str:
    """`[headroom: <summary>; call headroom_retrieve(hash="<hash>") for the rest]`.

    The summary is flattened to one line. It may hold brackets and quotes (JSON values of
    constant fields); a marker ends at `for the rest]`, and `find_markers` is the way to read one.
    """
    if not re.fullmatch(r"[0-9a-f]{16,64}", hash):
        raise ValueError(f"marker hash must be 16-64 lower-case hex characters, got {hash!r}")
    return f'[headroom: {summary.translate(_UNSAFE)}; call {RETRIEVE_TOOL}(hash="{hash}") for the rest]'


def find_markers(text: str) -> list[str]:
    """Hashes named by markers in `text`, in order of appearance, without repeats."""
    if not contains(text, "[headroom: "):
        return []
    seen: dict[str, None] = {}
    for m in _MARKER_RE.finditer(text):
        seen.setdefault(m.group(1), None)
    return list(seen)


def has_marker(text: str) -> bool:
    return contains(text, "[headroom: ") and _MARKER_RE.search(text) is not None
