"""Search results (grep, ripgrep, git grep): grouped by file, every file listed with its count.

Accepts `path:line:text`, `path:line:col:text`, `path:text`, context lines (`path-line-text`,
`--`), ripgrep's heading layout and `rg --json` events (rendered in the same grouped text). Each file keeps a header `path (N matches, K shown)`; the
shown matches are every match containing a distinctive term of the request, then the rest in
rounds (definitions first) while the budget lasts. Lines that are not matches stay as they are.
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
import re
from dataclasses import dataclass, field

from . import chunked
from .base import CompressContext, Omitted, Rendering
from .detect import SEARCH_LINE_RE
from .lines import query_terms

_HEADING_RE = re.compile(r"^(?P<line>\d+)(?::\d+)?(?P<sep>[:-])(?P<text>.*)$")
_PATH_ONLY_RE = re.compile(r"^(?:\./)?[^\s:\"'<>|]+(?:/[^\s:\"'<>|]+|\.[A-Za-z0-9]{1,10})$")
_DEF_RE = re.compile(r"\b(?:def|class|function|func|fn|interface|type|struct|enum|impl|const|let|var|export)\b")


@dataclass
class _File:
    path: str
    matches: list[tuple[int, str]] = field(default_factory=list)  # (order, "12:text")
    context: int = 0


def _parse(lines: list[str]) -> tuple[dict[str, _File], list[str], int] | None:
    files: dict[str, _File] = {}
    other: list[str] = []
    context = 0
    current: _File | None = None
    match = SEARCH_LINE_RE.match
    for order, line in enumerate(lines):
        if line == "--" or not line or line.isspace():
            continue
        m = match(line)
        if m:
            path, sep, number, text = m.group("path", "sep", "line", "text")
            f = files.get(path)
            if f is None:
                f = files[path] = _File(path)
            if sep == "-":
                f.context += 1
                context += 1
            else:
                f.matches.append((order, f"{number}:{text}" if number else text))
            continue
        h = _HEADING_RE.match(line)
        if h and current is not None:
            if h.group("sep") == "-":
                current.context += 1
                context += 1
            else:
                current.matches.append((order, h.group("line") + ":" + h.group("text")))
            continue
        if _PATH_ONLY_RE.match(line):
            current = files.get(line) or files.setdefault(line, _File(line))
            continue
        other.append(line)
    if not files:
        return None
    return files, other, context


def _ranked(f: _File) -> list[int]:
    """Match order for showing: definitions among the first matches first, then the rest."""
    head = range(min(len(f.matches), 40))
    defs = [k for k in head if _DEF_RE.search(f.matches[k][1])]
    chosen = set(defs)
    return defs + [k for k in range(len(f.matches)) if k not in chosen]


def _parse_rg_json(lines: list[str]) -> tuple[dict[str, _File], list[str], int] | None:
    """`rg --json`: one JSON event per line; matches and context lines by file."""
    files: dict[str, _File] = {}
    other: list[str] = []
    context = 0
    for order, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            data = event["data"]
            kind = event["type"]
        except (ValueError, KeyError, TypeError):
            other.append(line)
            continue
        if kind not in ("match", "context"):
            if kind == "summary":
                other.append(line)
            continue
        path = (data.get("path") or {}).get("text") or "?"
        f = files.get(path) or files.setdefault(path, _File(path))
        if kind == "context":
            f.context += 1
            context += 1
            continue
        body = ((data.get("lines") or {}).get("text") or "").rstrip("\n")
        f.matches.append((order, f"{data.get('line_number', '?')}:{body}"))
    return (files, other, context) if files else None


def _term_hits(files: dict[str, _File], terms: list[str], cap: int) -> list[list[tuple[str, int]]]:
    """For each term, the matches (path, index) whose text contains it, in file order; a term
    found in more than `cap` matches gets an empty list (it says nothing about which to keep).
    One lower-cased text of all matches is searched with str.find, stopping past the cap."""
    keys = [(p, k) for p, f in files.items() for k in range(len(f.matches))]
    texts = [t.lower() for f in files.values() for _, t in f.matches]
    low = "\n".join(texts)  # a term holds no newline: a hit never spans two matches
    starts = [0, *itertools.accumulate(map(operator.add, map(len, texts[:-1]), itertools.repeat(1)))]
    out = []
    for term in terms:
        hits: list[int] = []
        for pos in chunked.find_all(low, term):
            i = bisect.bisect_right(starts, pos) - 1
            if not hits or hits[-1] != i:
                hits.append(i)
                if len(hits) > cap:
                    break
        out.append([keys[i] for i in hits] if len(hits) <= cap else [])
    return out


def compress(text: str, ctx: CompressContext) -> Rendering | None:
    lines = chunked.split_lines(text)
    first = chunked.strip_bounds(text)[0]
    parsed = _parse_rg_json(lines) if text[first:first + 1] == "{" else _parse(lines)
    if parsed is None:
        return None
    files, other, context = parsed
    total = sum(len(f.matches) for f in files.values())
    if total < 8:
        return None
    terms = query_terms(ctx.query)
    cap = max(3, total // 10)
    shown: dict[str, set[int]] = {p: set() for p in files}
    if terms:
        for hits in _term_hits(files, terms, cap):
            for p, k in hits:
                shown[p].add(k)
    # the budget is a share of the matches as grep prints them (rg --json is far wordier)
    grep_size = sum((len(f.path) + 2) * len(f.matches) + sum(map(len, map(operator.itemgetter(1), f.matches)))
                    for f in files.values())
    budget = grep_size * (0.05 if ctx.harder else 0.10)
    used = sum(len(files[p].matches[k][1]) for p, ks in shown.items() for k in ks)
    order = sorted(files.values(), key=lambda f: -len(f.matches))  # stable: ties keep first appearance
    ranked = {f.path: _ranked(f) for f in order}
    rnd = 0
    while used < budget:
        progressed = False
        for f in order:
            if rnd < len(ranked[f.path]) and used < budget:
                k = ranked[f.path][rnd]
                if k not in shown[f.path]:
                    shown[f.path].add(k)
                    used += len(f.matches[k][1]) + 1
                progressed = True
        if not progressed:
            break
        rnd += 1

    n_shown = sum(len(s) for s in shown.values())
    omitted = total - n_shown
    if omitted == 0 and context == 0:
        return None
    out: list[str] = []
    summary = (f"{total} matches in {len(files)} files; {omitted} matches"
               + (f" and {context} context lines" if context else "")
               + " omitted — every file is listed with its match count")
    out.append(ctx.marker(summary))
    hidden: list[str] = []  # consecutive files with no match shown: listed on one line

    def flush() -> None:
        if hidden:
            out.append("not shown: " + ", ".join(hidden))
            hidden.clear()

    for f in files.values():
        count = len(f.matches)
        keep = sorted(shown[f.path])
        if not keep:
            hidden.append(f"{f.path} ({count})" if count else f"{f.path} ({f.context} context lines)")
            continue
        flush()
        noun = "match" if count == 1 else "matches"
        if len(keep) == count:
            out.append(f"{f.path} ({count} {noun})")
        else:
            out.append(f"{f.path} ({count} {noun}, {len(keep)} shown)")
        out.extend(f.matches[k][1] for k in keep)
    flush()
    out.extend(other)
    return Rendering("\n".join(out), "search", Omitted(omitted, "matches"))
