"""One short console line per request, for a person watching `headroom proxy` run.

    anthropic claude-sonnet-4-5  41,230→7,402 tok -82%  cache miss  200  1,234 ms
    openai gpt-4o  stream  812 tok  cache hit  200  3 ms
    anthropic claude-opus-4  2,100 tok  429 rate_limit  1 ms

Only figures that a RequestRecord holds; no key, no content. `--quiet` silences it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .records import RequestRecord

SEP = "  "


def _tokens(before: int, after: int) -> str:
    if after and after != before:
        pct = round(100 * (after - before) / before) if before else 0
        return f"{before:,}→{after:,} tok {pct:+d}%"
    return f"{before:,} tok"


def format_request_line(record: RequestRecord) -> str:
    """The console line for one finished request (no trailing newline)."""
    parts = [record.provider, record.model or "?"]
    if record.stream:
        parts.append("stream")
    parts.append(_tokens(record.tokens_before, record.tokens_after))
    if record.retrieval_rounds:
        parts.append(f"retrieved×{record.retrieval_rounds}")
    if record.cache not in ("off", ""):
        parts.append(f"cache {record.cache}")
    status = str(record.status)
    if record.refused:
        status += f" {record.refused}"
    parts.append(status)
    parts.append(f"{record.latency_ms:,.0f} ms")
    line = SEP.join(parts)
    if record.error:
        # One line, bounded: the error text is ours (never a key), but may be long.
        line += f"{SEP}error: {' '.join(record.error.split())[:120]}"
    return line


def print_request_line(record: RequestRecord, quiet: bool, stream: TextIO | None = None) -> None:
    """Write the line to `stream` (stderr by default) unless `quiet`."""
    if quiet:
        return
    out = stream if stream is not None else sys.stderr
    out.write(format_request_line(record) + "\n")
    out.flush()
