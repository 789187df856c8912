"""Column-aligned tables (kubectl get, docker ps, helm list): header kept, rows with problems or
rare statuses kept, the rest counted per status value and announced in place.
"""

from __future__ import annotations

import re
from collections import Counter

from .base import CompressContext, Omitted, Rendering
from .lines import absorb_small_gaps, line_starts, query_line_hits, render_kept, split_lines
from .severity import NORMAL, severity

_SPLIT_RE = re.compile(r"\s{2,}")
_STATUS_COLS = frozenset({"STATUS", "STATE", "READY", "PHASE", "HEALTH", "RESTARTS", "CONDITIONS",
                          "RESULT", "CONCLUSION", "SYNC STATUS", "HEALTH STATUS"})
_BAD_RE = re.compile(r"Error|CrashLoopBackOff|Failed|Pending|Terminating|Unknown|Evicted|OOMKilled|"
                     r"BackOff|Exited \([1-9]\d*\)|Unhealthy|NotReady|Degraded|Dead|Restarting|Init:\S+", re.I)


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    lines = split_lines(text)
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        return None
    header = _SPLIT_RE.split(lines[header_at].strip())
    rows = [i for i in range(header_at + 1, len(lines)) if lines[i].strip()]
    if len(rows) < 12:
        return None
    status_idx = [k for k, h in enumerate(header) if h.upper() in _STATUS_COLS]
    kept = [True] * (header_at + 1) + [False] * (len(lines) - header_at - 1)
    for i in range(header_at + 1, len(lines)):
        if not lines[i].strip():
            kept[i] = True
    head, tail = (3, 2) if ctx.harder else (5, 3)
    for i in rows[:head] + rows[-tail:]:
        kept[i] = True
    cells = {i: _SPLIT_RE.split(lines[i].strip()) for i in rows}
    summaries = []
    for k in status_idx:
        col = Counter(c[k] for c in cells.values() if len(c) == len(header))
        rare_cap = max(2, len(rows) // 50)
        for i, c in cells.items():
            if len(c) == len(header) and (col[c[k]] <= rare_cap or _BAD_RE.search(c[k])):
                kept[i] = True
        top = col.most_common(5)
        more = sum(col.values()) - sum(c for _, c in top)
        summaries.append(f"{header[k]}: " + ", ".join(f"{c}× {v}" for v, c in top) + (f", {more} other" if more else ""))
    for i in rows:
        if not kept[i] and (severity(lines[i]) > NORMAL or _BAD_RE.search(lines[i])):
            kept[i] = True
    for i in query_line_hits(text, lines, line_starts(lines), ctx.query):
        kept[i] = True
    absorb_small_gaps(lines, kept)
    if all(kept):
        return None
    omitted_rows = sum(1 for i in rows if not kept[i])
    summary = f"{omitted_rows} of {len(rows)} rows omitted — rows with problems or rare values kept"
    if summaries:
        summary += "; all rows: " + "; ".join(summaries)
    body, _ = render_kept(lines, kept, ctx, lambda a, b: f"rows {a + 1}-{b} omitted ({b - a} rows)" if b - a > 1 else f"row {a + 1} omitted")
    out = lines[: header_at + 1] + [ctx.marker(summary)]
    rest = body.split("\n")[header_at + 1:]
    return Rendering("\n".join(out + rest), "table", Omitted(omitted_rows, "rows"))
