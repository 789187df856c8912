"""Route one text to the compressor of its kind (with plain-text repeat collapsing as fallback)."""

from __future__ import annotations

from . import chunked, code, diff, html, json_array, logs, search, table, text
from .base import CompressContext, ContentKind, Rendering
from .detect import detect_kind
from .jsonscan import forget, parse_json

GC_PAUSE_CHARS = 1 << 20  # texts this long are compressed with the cyclic collector held off

_BY_KIND = {
    "json": json_array.compress,
    "log": logs.compress,
    "search": search.compress,
    "diff": diff.compress,
    "html": html.compress,
    "table": table.compress,
    "text": text.compress,
}


def compress_text(value: str, ctx: CompressContext, kind: ContentKind | None = None,
                  allow_json: bool = True) -> Rendering | None:
    """The rendering of `value` by its kind's compressor, or None when nothing is worth cutting."""
    since = chunked.mark()
    with chunked.gc_paused(len(value) > GC_PAUSE_CHARS):
        try:
            return _compress_text(value, ctx, kind, allow_json)
        finally:
            chunked.release(since)  # the compressor's big lists, freed a slice at a time


def _compress_text(value: str, ctx: CompressContext, kind: ContentKind | None,
                   allow_json: bool) -> Rendering | None:
    kind = kind or detect_kind(value)
    if kind.name == "json" and not allow_json:
        return None  # a JSON document inside a JSON string: left as it is
    if kind.name == "code":
        result = code.compress(value, ctx, kind.language)
    else:
        result = _BY_KIND[kind.name](value, ctx)
    if result is None and kind.name == "json" and parse_json(value) is None:
        forget()  # JSON-shaped but not JSON: read it as what it is
        return _compress_text(value, ctx, detect_kind(value, allow_json=False), True)
    forget()
    if result is None and kind.name not in ("json", "text", "code"):
        result = text.compress(value, ctx)
    return result
