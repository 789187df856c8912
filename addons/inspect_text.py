"""Readable text for mitmweb: the one-line comment from headroom's flow summary, and request
bodies as indented lines (JSON text inside strings rendered item by item) for the diff view.
Pure functions over plain values; the views and addons that use them are in addons/inspect.py.
"""

# No `from __future__ import annotations`: see addons/forward.py (mitmproxy script loading).
import json
from collections.abc import Mapping
from typing import Any


# ---------------------------------------------------------------- the comment

def summary_comment(meta: Mapping[str, Any]) -> str:
    """`-82% 41,230→7,402 tok · json×3 log×1 · cache miss` from the optimiser's summary.

    Reads tokens_before/tokens_after, transforms (a list of {kind, count} or a {kind: count}
    mapping), cache, retrieval_rounds, refused and error; absent fields are left out.
    """
    parts: list[str] = []
    before, after = int(meta.get("tokens_before") or 0), int(meta.get("tokens_after") or 0)
    if before and after and after != before:
        parts.append(f"{round(100 * (after - before) / before):+d}% {before:,}→{after:,} tok")
    elif before:
        parts.append(f"{before:,} tok")
    kinds = _transform_counts(meta.get("transforms"))
    if kinds:
        parts.append(" ".join(f"{k}×{n}" for k, n in kinds.items()))
    if meta.get("retrieval_rounds"):
        parts.append(f"retrieve×{int(meta['retrieval_rounds'])}")
    cache = meta.get("cache")
    if cache and cache != "off":
        parts.append(f"cache {cache}")
    if meta.get("refused"):
        parts.append(f"refused: {meta['refused']}")
    if meta.get("error"):
        parts.append(f"fail-open: {' '.join(str(meta['error']).split())[:160]}")
    return " · ".join(parts)


def _transform_counts(transforms: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    if isinstance(transforms, Mapping):
        items = [(k, v if isinstance(v, int) else 1) for k, v in transforms.items()]
    elif isinstance(transforms, (list, tuple)):
        items = [(t.get("kind", "?"), int(t.get("count", 1))) for t in transforms
                 if isinstance(t, Mapping)]
    else:
        return counts
    for kind, n in items:
        counts[str(kind)] = counts.get(str(kind), 0) + n
    return counts


def shrank(meta: Mapping[str, Any]) -> bool:
    before, after = int(meta.get("tokens_before") or 0), int(meta.get("tokens_after") or 0)
    return 0 < after < before


# ---------------------------------------------------------------- readable rendering and diff

def readable_lines(body: bytes) -> list[str]:
    """JSON as indented `key: value` lines, multi-line strings as `|` blocks; else the text.

    One tool-output line becomes one rendered line, so a diff shows exactly which lines of
    an output were dropped and where a marker was put.
    """
    try:
        doc = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").splitlines()
    out: list[str] = []
    _render(doc, 0, out)
    return out


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _render(value: Any, depth: int, out: list[str]) -> None:
    pad = "  " * depth
    if isinstance(value, dict):
        for key, item in value.items():
            _render_item(f"{pad}{key}:", item, depth, out)
        if not value:
            out.append(pad + "{}")
    elif isinstance(value, list):
        for item in value:
            _render_item(f"{pad}-", item, depth, out)
        if not value:
            out.append(pad + "[]")
    else:
        out.append(pad + _scalar(value))


def _json_text(item: str) -> Any:
    """The parsed value when a string holds a JSON array or object (a tool's JSON output),
    so its items get one line each and a diff shows which were dropped; else None."""
    if len(item) < 2 or item.lstrip()[:1] not in ("[", "{"):
        return None
    try:
        value = json.loads(item)
    except ValueError:
        return None
    return value if isinstance(value, (dict, list)) and value else None


def _render_item(head: str, item: Any, depth: int, out: list[str]) -> None:
    parsed = _json_text(item) if isinstance(item, str) else None
    if parsed is not None:
        out.append(head + " (JSON text)")
        _render(parsed, depth + 1, out)
    elif isinstance(item, str) and "\n" in item:
        out.append(head + " |")
        out.extend("  " * (depth + 1) + line for line in item.split("\n"))
    elif isinstance(item, (dict, list)) and item:
        out.append(head)
        _render(item, depth + 1, out)
    elif isinstance(item, (dict, list)):
        out.append(f"{head} {'{}' if isinstance(item, dict) else '[]'}")
    else:
        out.append(f"{head} {_scalar(item)}")
