"""HTML: shown as its readable text (tags, scripts, styles and comments removed), with link
targets kept, then compressed as text. The page itself stays retrievable by the marker's hash.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from . import text as text_compressor
from .base import CompressContext, Omitted, Rendering

_SKIP = frozenset({"script", "style", "noscript", "svg", "template", "head", "iframe", "canvas"})
_BLOCK = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
                    "article", "header", "footer", "nav", "main", "table", "ul", "ol", "pre",
                    "blockquote", "hr", "dt", "dd", "form", "title", "aside", "figure", "details"})
_SPACES_RE = re.compile(r"[ \t\r\f\v]+")
_BLANKS_RE = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0
        self.title = False
        self.href: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.title = True
        elif tag in _SKIP:
            self.skip += 1
        if tag in _BLOCK:
            self.parts.append("\n")
        if tag == "li":
            self.parts.append("- ")
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self.href = href if href.startswith(("http://", "https://", "/")) else None

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.title = False
            self.parts.append("\n")
        elif tag in _SKIP and self.skip:
            self.skip -= 1
        elif tag == "a" and self.href:
            self.parts.append(f" ({self.href})")
            self.href = None
        if tag in _BLOCK or tag in ("td", "th"):
            self.parts.append("\n" if tag in _BLOCK else " | ")

    def handle_data(self, data: str) -> None:
        if self.skip and not self.title:
            return
        self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    raw = "".join(parser.parts)
    lines = [_SPACES_RE.sub(" ", line).strip() for line in raw.split("\n")]
    return _BLANKS_RE.sub("\n\n", "\n".join(lines)).strip()


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    try:
        plain = html_to_text(text)
    except (AssertionError, ValueError):  # HTMLParser gives up on some broken markup
        return None
    if not plain or len(plain) >= len(text) * 0.8:
        return None
    inner = text_compressor.compress(plain, ctx)
    body = inner.text if inner else plain
    head = ctx.marker(f"HTML shown as text: tags, scripts, styles and comments removed "
                      f"({len(text) - len(plain)} of {len(text)} characters)"
                      + (f", and {inner.omitted.count} repeated lines" if inner else ""))
    return Rendering(head + "\n" + body, "html", Omitted(len(text) - len(body), "characters"))
