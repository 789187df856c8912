"""Unified diffs: every changed line and every header kept; only unchanged context is trimmed.

Kept verbatim: `diff --git`, `index`, `---`/`+++`, mode changes, renames and copies, similarity,
`Binary files ... differ`, `\\ No newline at end of file`, every hunk header and every `+`/`-`
line. A long run of context lines keeps the lines next to the changes and is replaced in the
middle by a marker with its count and old/new line numbers. Hunks are read by their header
counts, so a removed line that looks like `--- x` is never mistaken for a header.
"""

from __future__ import annotations

import re

from .base import CompressContext, Omitted, Rendering
from .lines import split_lines

_HUNK_RE = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")


def _hunk_spans(lines: list[str]) -> list[tuple[int, int, int, int]] | None:
    """(first body line, end, old start, new start) of every hunk; None if a hunk is malformed."""
    spans = []
    n = len(lines)
    i = 0
    while i < n:
        m = _HUNK_RE.match(lines[i])
        if not m:
            i += 1
            continue
        old_left = int(m.group(2)) if m.group(2) is not None else 1
        new_left = int(m.group(4)) if m.group(4) is not None else 1
        j = i + 1
        while j < n and (old_left > 0 or new_left > 0 or (j < n and lines[j].startswith("\\"))):
            c = lines[j][:1]
            if c == " " or lines[j] == "":
                old_left -= 1
                new_left -= 1
            elif c == "-":
                old_left -= 1
            elif c == "+":
                new_left -= 1
            elif c != "\\":
                break
            j += 1
        if old_left < 0 or new_left < 0:
            return None
        spans.append((i + 1, j, int(m.group(1)), int(m.group(3))))
        i = j
    return spans


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    lines = split_lines(text)
    spans = _hunk_spans(lines)
    if not spans:
        return None
    keep_ctx = 0 if ctx.harder else 1
    min_omit = 5
    omit: dict[int, tuple[int, str]] = {}  # first omitted line -> (end, summary)
    for start, end, old_no, new_no in spans:
        # line numbers of each body line, to name the omitted range honestly
        i = start
        while i < end:
            c = lines[i][:1]
            if c == " " or lines[i] == "":
                j = i
                while j < end and (lines[j][:1] == " " or lines[j] == ""):
                    j += 1
                lo = i + (keep_ctx if i > start else 0)
                hi = j - (keep_ctx if j < end else 0)
                if hi - lo >= min_omit:
                    o = old_no + (lo - i)
                    nw = new_no + (lo - i)
                    omit[lo] = (hi, f"{hi - lo} unchanged lines omitted (old {o}-{o + hi - lo - 1}, new {nw}-{nw + hi - lo - 1})")
                old_no += j - i
                new_no += j - i
                i = j
                continue
            if c == "-":
                old_no += 1
            elif c == "+":
                new_no += 1
            i += 1
    if not omit:
        return None
    out: list[str] = []
    omitted = 0
    i = 0
    n = len(lines)
    while i < n:
        if i in omit:
            end, summary = omit[i]
            out.append(ctx.marker(summary))
            omitted += end - i
            i = end
            continue
        out.append(lines[i])
        i += 1
    return Rendering("\n".join(out), "diff", Omitted(omitted, "lines"))
