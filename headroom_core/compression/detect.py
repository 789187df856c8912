"""What kind of content a tool output is, from a cheap look at its first few hundred lines.

Deterministic and dependency-free (no tree-sitter): JSON by parsing, the others by the share of
sample lines that carry each kind's signature. Order matters: JSON, diff, HTML, search, table,
log, code, text — the more specific format wins.
"""

from __future__ import annotations

import json
import re

from .base import ContentKind
from .chunked import strip_bounds
from .jsonscan import parse_json
from .severity import has_level_word

JSON = ContentKind("json")
DIFF = ContentKind("diff")
HTML = ContentKind("html")
SEARCH = ContentKind("search")
TABLE = ContentKind("table")
LOG = ContentKind("log")
TEXT = ContentKind("text")

_SAMPLE_LINES = 400
_PARSE_LIMIT = 50_000

_DIFF_HEAD_RE = re.compile(r"^(?:diff --git |diff -[\w -]+ |--- \S|\+\+\+ \S|@@ -\d+(?:,\d+)? \+\d+|index [0-9a-f]+\.\.|Binary files )")
_HUNK_RE = re.compile(r"^@@ -\d+(?:,\d+)? \+\d+(?:,\d+)? @@")
_HTML_START_RE = re.compile(r"^\s*(?:<!doctype html|<html[\s>]|<head[\s>]|<body[\s>])", re.I)
_HTML_TAG_RE = re.compile(r"</?(?:div|span|p|a|li|ul|ol|td|tr|th|table|script|style|meta|link|head|body|"
                          r"h[1-6]|br|img|section|nav|header|footer|main|article|form|input|button)\b", re.I)

SEARCH_LINE_RE = re.compile(
    r"^(?:\./)?(?P<path>[^\s:\"'<>|]*(?:/|\.[A-Za-z0-9]{1,10})[^\s:\"'<>|]*?)"
    r"(?:(?P<sep>[:-])(?P<line>\d+)(?::\d+)?[:-]|:(?=[^:]))(?P<text>.*)$")
_HEADING_MATCH_RE = re.compile(r"^\d+(?::\d+)?[:-]")
_PATH_ONLY_RE = re.compile(r"^(?:\./)?[^\s:\"'<>|]+(?:/[^\s:\"'<>|]+|\.[A-Za-z0-9]{1,10})$")

_TS_START_RE = re.compile(
    r"^[\[(]?(?:\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}|\d{2}:\d{2}:\d{2}|\d{4}/\d{2}/\d{2} \d{2}:\d{2}"
    r"|(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d{2}:\d{2}|\d{10}(?:\.\d+)?\s"
    r"|[IWEF]\d{4} \d\d:\d\d)")
_LEVEL_RE = re.compile(r"(?:^|[\s\[|\"=:])(?:TRACE|DEBUG|INFO|WARN|WARNING|ERROR|FATAL|CRITICAL|"
                       r"[Ii]nfo|[Dd]ebug|[Ww]arn(?:ing)?|[Ee]rror)(?:$|[\s\]|\":,])")
_RUNNER_RE = re.compile(
    r"^(?:=+ .*(?:test session starts|passed|failed|FAILURES|short test summary).*=+$|PASS |FAIL "
    r"|test .+ \.\.\. (?:ok|FAILED|ignored)$|--- (?:PASS|FAIL|SKIP): |=== RUN |ok\s+\S+\s+[\d.]+s"
    r"|\s*Compiling \S+ v\d|\s*Downloaded \S+ v\d|npm (?:WARN|ERR!|notice)|Step \d+/\d+ :|#\d+ \[|#\d+ (?:DONE|CACHED)"
    r"|\s*(?:✓|✕|√|×|✔|✘) |\S+\.py::\S+ (?:PASSED|FAILED|SKIPPED|ERROR)|\S+\.py [.FEsx]+\s+\["
    r"|\S+ \([\w.]+\) \.\.\. (?:ok|FAIL|ERROR|skipped)|Ran \d+ tests? in )")

_CODE_PATTERNS: dict[str, re.Pattern[str]] = {
    "python": re.compile(r"^[ \t]*(?:async[ \t]+)?def \w+\(|^[ \t]*class \w+[(:]|^(?:from [\w.]+ import |import [\w.]+)"
                         r"|^[ \t]*@\w[\w.]*(?:\(|$)|^[ \t]*(?:elif .*:|except\b.*:|try:|finally:|else:)$"
                         r"|^[ \t]*(?:return|raise|yield)\b|\bself\.\w|^[ \t]*if __name__ ==|^[ \t]*\"\"\"", re.M),
    "typescript": re.compile(r"^[ \t]*(?:export[ \t]+)?(?:interface|type|enum) \w+|:[ \t]*(?:string|number|boolean|void|any|unknown)\b"
                             r"|\bPromise<|^[ \t]*(?:public|private|readonly) \w+[ \t]*[:(]|\bas const\b|<\w++>\(", re.M),
    "javascript": re.compile(r"^[ \t]*(?:import .* from ['\"]|export (?:default |const |function |class |async )"
                             r"|(?:const|let|var) \w+ = |(?:async )?function\*? ?\w*\(|module\.exports|require\(['\"])"
                             r"|=>[ \t]*[{(]?$|^[ \t]*\}\)?;?$|^[ \t]*return\b.*;$", re.M),
    "go": re.compile(r"^package \w+$|^func |^[ \t]*\w+(?:, \w+)? := |^import \($|\berr != nil\b|^type \w+ (?:struct|interface) \{", re.M),
    "rust": re.compile(r"^[ \t]*(?:pub(?:\([\w:]+\))? )?(?:fn|struct|enum|impl|trait|mod|use) |\blet (?:mut )?\w|^[ \t]*#\[\w"
                       r"|->[ \t]*(?:Result|Option|Self|&|\w+)|\b\w++::\w", re.M),
    "java": re.compile(r"^[ \t]*(?:public|private|protected)[ \t]+(?:static[ \t]+)?[\w<>\[\], ]+[ \t]+\w+[ \t]*[({=;]|^import [\w.]+(?:\.\*)?;$"
                       r"|^package [\w.]+;$|@Override\b|System\.out\.", re.M),
    "c": re.compile(r"^#(?:include|define|ifn?def|endif|pragma)\b|^[ \t]*(?:static |const |extern )*(?:int|void|char|unsigned|size_t|struct \w+)[ \t]+\**\w+[ \t]*\(|\bstd::|->\w", re.M),
}
_CODE_END_RE = re.compile(r"(?:[{};:,(\[]|=>|\)|\]|\"\"\"|\*/)[ \t]*$|^[ \t]*(?:#|//|/\*|\*|--)", re.M)


def code_kind(language: str) -> ContentKind:
    return ContentKind("code", language)


def _sample(text: str) -> list[str]:
    head = text[:60000]
    lines = head.split("\n", _SAMPLE_LINES)[:_SAMPLE_LINES]
    return [line for line in lines if line.strip()]


def _is_diff(lines: list[str]) -> bool:
    hunks = sum(1 for line in lines if _HUNK_RE.match(line))
    if not hunks and not any(line.startswith(("diff --git ", "Binary files ")) for line in lines):
        return False
    shaped = sum(1 for line in lines if line[:1] in "+- @\\" or _DIFF_HEAD_RE.match(line)
                 or line.startswith(("new file mode", "deleted file mode", "old mode", "new mode",
                                     "similarity index", "rename from", "rename to", "copy from",
                                     "copy to", "commit ", "Author:", "Date:", "    ")))
    return shaped >= 0.8 * len(lines)


def _is_html(text: str, lines: list[str]) -> bool:
    if _HTML_START_RE.match(text[:500]):
        return True
    head = text[:20000]
    tags = len(_HTML_TAG_RE.findall(head))
    return tags >= 12 and tags * 3 >= len(lines)


def _is_search(lines: list[str]) -> bool:
    matched = heading = paths = 0
    for line in lines:
        if line == "--":
            matched += 1
        elif SEARCH_LINE_RE.match(line):
            matched += 1
        elif _HEADING_MATCH_RE.match(line):
            heading += 1
        elif _PATH_ONLY_RE.match(line):
            paths += 1
    n = len(lines)
    return matched >= 0.7 * n or (paths >= 1 and heading >= paths and heading + paths >= 0.8 * n)


def _is_table(lines: list[str], allow_csv: bool) -> bool:
    from .table import parse_table  # late: table imports the compressors' shared helpers

    return parse_table(lines, allow_csv) is not None


_TS_ANYWHERE_RE = re.compile(r"\[\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}")


def _log_share(lines: list[str]) -> float:
    hits = sum(1 for line in lines if _TS_START_RE.match(line) or _RUNNER_RE.match(line)
               or _TS_ANYWHERE_RE.search(line, 0, 80)
               or (has_level_word(line[:96]) and _LEVEL_RE.search(line, 0, 96)))
    return hits / len(lines)


def _code_language(lines: list[str]) -> str | None:
    lines = lines[:150]
    n = len(lines)
    # Source lines are short; prose written one paragraph per line is not code.
    if sum(1 for line in lines if len(line) < 160) < 0.7 * n:
        return None
    sample = "\n".join(lines)[:16000]
    scores = {lang: len(rx.findall(sample)) for lang, rx in _CODE_PATTERNS.items()}
    # TypeScript is JavaScript with types: its own hits only decide between the two.
    if scores["typescript"]:
        scores["typescript"] += scores["javascript"]
    lang = max(scores, key=lambda k: (scores[k], k == "python"))
    shaped = len(_CODE_END_RE.findall(sample))
    if scores[lang] >= max(3, 0.08 * n) and (shaped + scores[lang]) >= 0.5 * n:
        return lang
    return None


def _json_lines(text: str, start: int) -> bool:
    """One JSON value per line (NDJSON) from `start`, rather than one document."""
    end = text.find("\n", start, start + 20000)
    if end == -1 or text[end + 1:end + 2] not in ("{", "["):
        return False
    try:
        json.loads(text[start:end])
    except ValueError:
        return False
    return True


def detect_kind(text: str, allow_json: bool = True) -> ContentKind:
    """json, diff, html, search, table, log, code (with its language) or text."""
    start, end = strip_bounds(text)  # no copy of a 10 MB text (a copy holds the GIL throughout)
    if start == end:
        return TEXT
    if (allow_json and text[start] in "[{" and text[end - 1] in "]}"
            and not _json_lines(text, start)):
        # Small documents are parsed here; a large one is taken on its shape and the JSON
        # compressor (which parses it anyway) hands back to the other kinds if it is not JSON.
        if len(text) > _PARSE_LIMIT or parse_json(text) is not None:
            return JSON
    lines = _sample(text)
    if not lines:
        return TEXT
    if _is_diff(lines):
        return DIFF
    if _is_html(text, lines):
        return HTML
    if _is_search(lines):
        return SEARCH
    jsonish = sum(1 for line in lines if line.lstrip()[:1] == "{" and line.rstrip()[-1:] == "}")
    if jsonish >= 0.8 * len(lines):
        if any(line.startswith('{"type":"match"') for line in lines):
            return SEARCH  # rg --json
        return LOG  # JSON lines: structured logs or events, one record per line
    if _is_table(lines, allow_csv=False):
        return TABLE
    if _log_share(lines) >= 0.3:
        return LOG
    if _is_table(lines, allow_csv=True):
        return TABLE
    lang = _code_language(lines)
    if lang:
        return code_kind(lang)
    return TEXT
