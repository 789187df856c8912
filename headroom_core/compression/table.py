"""Tables printed by tools: column-aligned (kubectl get, docker ps), pipe tables (psql, mysql,
markdown) and CSV/TSV. Header and separator lines kept; rows kept by the same rules as JSON
records (problems and rare statuses, rows matching the request, first and last rows, one row
per value of low-cardinality columns, numeric outliers); every other row is counted in place.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass

from .base import CompressContext, Omitted, Rendering
from .json_select import Selection, record_columns
from .lines import absorb_small_gaps, line_starts, query_line_hits, render_kept, split_lines
from .severity import NORMAL, severity

_SPACES_RE = re.compile(r"\s{2,}")
_PIPE_SEP_RE = re.compile(r"^\s*[|+]?\s*:?-{2,}:?\s*(?:[|+]\s*:?-{2,}:?\s*)*[|+]?\s*$")
# Kubernetes and Docker states, as they spell them, then failure words in any case.
_BAD_RE = re.compile(r"Error|CrashLoopBackOff|Failed|Pending|Terminating|Unknown|Evicted|OOMKilled|"
                     r"BackOff|Exited \([1-9]\d*\)|Unhealthy|NotReady|Degraded|Dead|Restarting|Init:\S+|"
                     r"(?i:\bfail(?:ed|ure)?\b|\berror\b|\bdeclined\b|\brejected\b|\bdegraded\b|\bunhealthy\b)")
_NUMBER_RE = re.compile(r"^-?\d+(?:\.\d+)?$")


@dataclass
class Table:
    header_at: int
    columns: list[str]
    rows: dict[int, list[str]]  # line index -> cells (rows with the header's width)
    other: list[int]  # lines that are neither header nor rows (separators, footers, blanks)


def _cells_pipe(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _is_column_name(cell: str) -> bool:
    return bool(cell) and len(cell) <= 40 and not _NUMBER_RE.match(cell) and cell.count(" ") <= 3


def parse_table(lines: list[str], allow_csv: bool = True) -> Table | None:
    """The table in `lines`, or None when they are not one.

    Pipe tables need a separator line under the header (psql `---+---`, markdown `|---|`);
    column-aligned ones an upper-case header (`NAME   READY   STATUS`); CSV/TSV a header of
    column names and rows of the same width.
    """
    idx = [i for i, line in enumerate(lines) if line.strip()]
    if len(idx) < 8:
        return None
    head = idx[0]
    if _PIPE_SEP_RE.match(lines[head]) and len(idx) > 1:  # mysql's boxed layout starts with +---+
        head = idx[1]
    first = lines[head]
    nxt = lines[idx[idx.index(head) + 1]] if idx.index(head) + 1 < len(idx) else ""
    if "|" in first and _PIPE_SEP_RE.match(nxt):
        split = _cells_pipe
    elif allow_csv and first.count("\t") >= 1:
        split = lambda line: line.split("\t")  # noqa: E731
    elif allow_csv and first.count(",") >= 2:
        split = lambda line: next(csv.reader([line]))  # noqa: E731
    else:
        cells = _SPACES_RE.split(first.strip())
        if len(cells) < 3 or not all(c.upper() == c and any(ch.isalpha() for ch in c) for c in cells):
            return None
        split = lambda line: _SPACES_RE.split(line.strip())  # noqa: E731
    columns = split(first)
    if len(columns) < 2 or not all(_is_column_name(c) for c in columns):
        return None
    rows: dict[int, list[str]] = {}
    other: list[int] = []
    for i in idx[1:]:
        if i < head or _PIPE_SEP_RE.match(lines[i]):
            other.append(i)
            continue
        cells = split(lines[i])
        if len(cells) == len(columns):
            rows[i] = cells
        else:
            other.append(i)
    if len(rows) < 8 or len(rows) < 0.8 * (len(idx) - 1 - sum(1 for i in other if _PIPE_SEP_RE.match(lines[i]))):
        return None
    return Table(head, columns, rows, other)


def _value(cell: str) -> object:
    if _NUMBER_RE.match(cell):
        return float(cell) if "." in cell else int(cell)
    return cell


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    lines = split_lines(text)
    table = parse_table(lines)
    if table is None or len(table.rows) < 12:
        return None
    row_idx = list(table.rows)
    kept = [False] * len(lines)
    for i in range(table.header_at + 1):
        kept[i] = True
    for i in table.other:
        kept[i] = True
    for i in row_idx:
        line = lines[i]
        if severity(line) > NORMAL or _BAD_RE.search(line):
            kept[i] = True
    head, tail = (3, 2) if ctx.harder else (5, 3)
    for i in row_idx[:head] + row_idx[-tail:]:
        kept[i] = True
    for i in query_line_hits(text, lines, line_starts(lines), ctx.query):
        kept[i] = True
    records = [{c: _value(v) for c, v in zip(table.columns, table.rows[i])} for i in row_idx]
    sel = Selection()
    _, optional = record_columns(records, sel, ctx.harder)
    budget = len(text) * (0.04 if ctx.harder else 0.08)
    used = sum(len(lines[i]) for i in row_idx if kept[i])
    for k, _why in optional:
        if used >= budget:
            break
        i = row_idx[k]
        if not kept[i]:
            kept[i] = True
            used += len(lines[i])
    absorb_small_gaps(lines, kept)
    if all(kept):
        return None
    omitted_rows = sum(1 for i in row_idx if not kept[i])
    summary = f"{omitted_rows} of {len(row_idx)} rows omitted — problem rows, rare values and rows matching the request kept"
    status = [c for c in table.columns if c.lower() in ("status", "state", "ready", "phase", "health", "restarts", "result")]
    for c in status:
        counts = Counter(r[c] for r in records).most_common(5)
        summary += f"; {c}: " + ", ".join(f"{n}× {v}" for v, n in counts)
    if sel.constants:
        summary += "; every row has " + ", ".join(f"{k}={v}" for k, v in sel.constants.items())
    body, _ = render_kept(lines, kept, ctx, lambda a, b: f"lines {a + 1}-{b} omitted ({b - a} rows)" if b - a > 1 else f"line {a + 1} omitted (1 row)")
    out = body.split("\n")
    cut = table.header_at + 1
    while cut < len(out) and _PIPE_SEP_RE.match(out[cut]):
        cut += 1  # the summary goes below the header's separator line
    return Rendering("\n".join(out[:cut] + [ctx.marker(summary)] + out[cut:]), "table", Omitted(omitted_rows, "rows"))
