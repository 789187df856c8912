"""Logs and build/test-runner output: problems kept whole, repetition collapsed with counts.

Kept verbatim: every ERROR/FATAL/WARN/exception line with a few lines of context, whole stack
traces and test-failure blocks, the first and last lines, lines matching the request's
distinctive terms, and rare one-off lines. A template (numbers, ids, hashes, timestamps masked)
that repeats many times keeps its first and last occurrences; its other lines are counted in the
marker of the run they fall in. Error templates are collapsed only past a high count, so distinct
problems are never hidden.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter

from . import chunked
from . import severity as sv
from .base import CompressContext, Omitted, Rendering
from .lines import (absorb_small_gaps, display_template, gap_summary, line_keys, line_starts,
                    query_line_hits, render_kept, similar_groups, split_lines)

# Test-runner failure sections that are kept whole (pytest, cargo, jest, go test, mocha).
_BLOCK_START_RE = re.compile(
    r"^(?:_{3,} .+ _{3,}|---- .+ stdout ----|\s*● .+|--- FAIL: .+|\s+\d+\) .+|=+ (?:FAILURES|ERRORS) =+)$")
_BLOCK_END_RE = re.compile(
    r"^(?:_{3,} .+ _{3,}|---- .+ ----|\s*● .+|--- (?:FAIL|PASS): .+|={3,}.*|failures:|test result: .*"
    r"|Test Suites: .*|FAIL\s.*|ok\s.*|PASS\s.*)$")
_BLOCK_CAP = 150
_PER_KEY_LIMIT = 1500  # distinct templates above which problem lines are found by text scan


def _keep_block(lines: list[str], start: int, kept: list[bool]) -> int:
    n = len(lines)
    j = start + 1
    while j < n and j - start < _BLOCK_CAP and not _BLOCK_END_RE.match(lines[j]):
        j += 1
    for k in range(start, j):
        kept[k] = True
    return j


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    lines = split_lines(text)
    n = len(lines)
    if n < 12:
        return None
    keys = line_keys(text)
    if len(keys) != n:  # a lone surrogate or similar broke the alignment; leave it alone
        return None
    counts = chunked.counter(keys)
    starts = line_starts(lines)
    # Severity is read once per template, from its first line. When nearly every line is its
    # own template, only lines holding a problem hint (one text scan per hint) are read.
    first_at: dict[bytes, int] = {}
    for i, key in enumerate(keys):
        if key not in first_at:
            first_at[key] = i
    low: str | None = None  # the text lower-cased, made once for the scans that need it
    if len(first_at) > _PER_KEY_LIMIT:
        low = chunked.lower(text)
        hinted = sorted({bisect.bisect_right(starts, off) - 1 for off in sv.candidate_offsets(text, low)})
        reps: dict[bytes, int] = {}
        for i in hinted:
            reps.setdefault(keys[i], i)
    else:
        reps = first_at
    sev_of: dict[bytes, int] = {key: sv.severity(lines[i]) for key, i in reps.items()}
    problem_keys = {k for k, s in sev_of.items() if s > sv.NORMAL}
    trace_keys = {k for k, i in reps.items() if k not in problem_keys and sv.starts_trace(lines[i])}

    kept = [False] * n
    head, tail = (3, 2) if ctx.harder else (5, 5)
    before, after = (1, 1) if ctx.harder else (2, 2)
    for i in range(min(head, n)):
        kept[i] = True
    for i in range(max(0, n - tail), n):
        kept[i] = True

    # Problems written in digits (HTTP 5xx, exit codes, "3 failed") share their key with
    # healthy lines, so they are found by a text scan and counted under their own group.
    line_level: dict[int, int] = {}
    for offset, level in sv.numeric_problem_offsets(text):
        i = bisect.bisect_right(starts, offset) - 1
        line_level[i] = max(level, line_level.get(i, 0))
    problem_lines = sorted(set(i for i, k in enumerate(keys) if k in problem_keys) | set(line_level)) \
        if problem_keys or line_level else []

    # Problem lines: an ERROR kind seen at most `repeat_cap` times keeps every line; one
    # repeated more keeps its first three and last two. A WARN kind keeps its first two and
    # last line once it repeats more than three times (warnings repeat the most and say the
    # least). Past a cap per level, the first and last lines of that level stay. Every
    # omitted problem line is counted by level, with its most common wording, in the marker
    # of the run it falls in.
    level_of = {i: max(sev_of.get(keys[i], 0), line_level.get(i, 0)) for i in problem_lines}
    repeat_cap = 6 if ctx.harder else 10
    # Many problem lines: group them by similar wording too, so a burst of one error that
    # names a different user or path on each line is recognised as one repeated error.
    kinds = similar_groups(lines, problem_lines) if len(problem_lines) > 6 else \
        [keys[i] for i in problem_lines]
    group = [(kind, level_of[i]) for kind, i in zip(kinds, problem_lines)]
    totals = Counter(group)
    seen: Counter[tuple] = Counter()
    chosen: list[int] = []
    for i, g in zip(problem_lines, group):
        seen[g] += 1
        if g[1] == sv.WARN:
            if totals[g] > 3 and 2 < seen[g] < totals[g]:
                continue
        elif totals[g] > repeat_cap and 3 < seen[g] <= totals[g] - 2:
            continue
        chosen.append(i)
    caps = {sv.WARN: 15 if ctx.harder else 30, sv.ERROR: 60 if ctx.harder else 150}
    for level, cap in caps.items():
        at_level = [i for i in chosen if level_of[i] == level]
        if len(at_level) > cap:
            dropped = set(at_level[cap * 2 // 3: len(at_level) - cap // 3])
            chosen = [i for i in chosen if i not in dropped]
    first_in_group: set[int] = set()
    seen_groups: set = set()
    for i, g in zip(problem_lines, group):
        if g not in seen_groups:
            seen_groups.add(g)
            first_in_group.add(i)
    for i in chosen:
        level = level_of[i]
        # context for the first line of each kind of problem (and every FATAL); a repeat of a
        # kind already shown with its context stands alone
        wide = level >= sv.FATAL or (level >= sv.ERROR and i in first_in_group)
        ctx_before, ctx_after = (before, after) if wide else (0, 0)
        for k in range(max(0, i - ctx_before), min(n, i + ctx_after + 1)):
            kept[k] = True
        if sv.trace_follows(lines, i):
            end = sv.trace_end(lines, i)
            for k in range(i, end):
                kept[k] = True
    for i, line in enumerate(lines):
        if line[:1] in "_-= \t●" and _BLOCK_START_RE.match(line):
            _keep_block(lines, i, kept)

    # Exception lines whose template is not itself a problem (an indented traceback logged at
    # INFO, a bare "Traceback" line) still start a kept trace.
    if trace_keys:
        for i in (i for i, k in enumerate(keys) if k in trace_keys):
            if lines[i].strip():
                for k in range(max(0, i - before), sv.trace_end(lines, i)):
                    kept[k] = True

    for i in query_line_hits(text, lines, starts, ctx.query, lower=low):
        kept[i] = True

    # One-off lines (start-up banners, config, shutdown) say a lot when there are few of them.
    problem_set = set(problem_lines)
    singles = [i for i, key in enumerate(keys) if counts[key] == 1 and not kept[i] and i not in problem_set] \
        if len(counts) <= n // 2 + len(problem_set) else []
    if len(singles) <= (10 if ctx.harder else 30) and len(singles) * 20 <= n:
        for i in singles:
            kept[i] = True

    absorb_small_gaps(lines, kept)
    if all(kept):
        return None
    by_level = {lvl: [i for i in problem_lines if level_of[i] == lvl] for lvl in (sv.WARN, sv.ERROR, sv.FATAL)}

    kind_of = dict(zip(problem_lines, kinds))
    first_of_kind: dict = {}
    for i in problem_lines:
        first_of_kind.setdefault(kind_of[i], i)

    def describe(a: int, b: int) -> str:
        summary = gap_summary(keys, lines, a, b)
        notes = []
        for lvl, name in ((sv.FATAL, "FATAL"), (sv.ERROR, "ERROR"), (sv.WARN, "WARN")):
            idx = by_level[lvl]
            lo, hi = bisect.bisect_left(idx, a), bisect.bisect_left(idx, b)
            if hi > lo:
                kind, count = Counter(kind_of[i] for i in idx[lo:hi]).most_common(1)[0]
                like = f", {count} like '{display_template(lines[first_of_kind[kind]])}'" if count > 1 else ""
                notes.append(f"{hi - lo} {name}{like}")
        return summary + (f" — of them {'; '.join(notes)}" if notes else "")

    body, omitted = render_kept(lines, kept, ctx, describe)
    return Rendering(body, "log", Omitted(omitted, "lines"))
