"""Plain text: repeated lines and repeated paragraphs collapsed, nothing else dropped.

No word is removed and no two lines are merged (LLMLingua is its own opt-in feature). A run of
identical lines keeps its first line; a run of lines that differ only in numbers or ids (progress
bars, counters) keeps its first two and last line; a paragraph seen before is replaced by a note
naming where it first appeared. With `harder` (compress-first before context fitting drops
anything), a still-long text keeps its head and tail only.
"""

from __future__ import annotations

from .base import CompressContext, Omitted, Rendering
from .lines import absorb_small_gaps, display_template, line_keys, render_kept, split_lines

_SAME, _SIMILAR, _PARA, _MIDDLE = "repeats of the line above", "similar lines", "repeated paragraphs", "middle"


def _mark_runs(lines: list[str], keys: list[bytes], kept: list[bool], why: list[str | None]) -> None:
    n = len(lines)
    i = 0
    while i < n:
        j = i + 1
        while j < n and lines[j] == lines[i]:
            j += 1
        if j - i >= 3 and lines[i].strip():
            for k in range(i + 1, j):
                kept[k], why[k] = False, _SAME
            i = j
            continue
        j = i + 1
        while j < n and keys[j] == keys[i] and lines[j].strip():
            j += 1
        if j - i >= 6 and lines[i].strip():
            for k in range(i + 2, j - 1):
                kept[k], why[k] = False, _SIMILAR
        i = max(j, i + 1)


def _mark_paragraphs(lines: list[str], kept: list[bool], why: list[str | None],
                     first_seen: dict[int, int]) -> None:
    seen: dict[str, int] = {}
    n = len(lines)
    i = 0
    while i < n:
        while i < n and not lines[i].strip():
            i += 1
        j = i
        while j < n and lines[j].strip():
            j += 1
        if j > i:
            para = "\n".join(lines[i:j])
            if (j - i >= 2 or len(para) >= 120) and para in seen:
                for k in range(i, j):
                    kept[k], why[k] = False, _PARA
                first_seen[i] = seen[para]
            else:
                seen.setdefault(para, i)
        i = j


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    lines = split_lines(text)
    n = len(lines)
    if n < 4:
        return None
    keys = line_keys(text)
    if len(keys) != n:
        return None
    kept = [True] * n
    why: list[str | None] = [None] * n
    first_seen: dict[int, int] = {}
    _mark_runs(lines, keys, kept, why)
    _mark_paragraphs(lines, kept, why, first_seen)
    if ctx.harder:
        live = [i for i in range(n) if kept[i]]
        if len(live) > 120:
            for i in live[60:-30]:
                kept[i], why[i] = False, _MIDDLE
    absorb_small_gaps(lines, kept)
    if all(kept):
        return None

    def describe(a: int, b: int) -> str:
        reasons = [why[k] for k in range(a, b)]
        count = b - a
        where = f"lines {a + 1}-{b}" if count > 1 else f"line {a + 1}"
        if all(r == _SAME for r in reasons):
            return f"{where} omitted: the line above repeated {count} more times"
        if all(r == _SIMILAR for r in reasons):
            return f"{where} omitted: {count} more lines like '{display_template(lines[a])}'"
        if all(r == _PARA for r in reasons) and a in first_seen:
            return f"{where} omitted ({count} lines): repeat of the paragraph at line {first_seen[a] + 1}"
        return f"{where} omitted ({count} lines)"

    body, omitted = render_kept(lines, kept, ctx, describe)
    return Rendering(body, "text", Omitted(omitted, "lines"))
