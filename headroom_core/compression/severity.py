"""Which lines report a problem: severity of one line, and where a stack trace ends.

Shared by the log, text and table compressors. Explicit level tokens win (`INFO ... error` is
not an error line unless it also carries an exception); otherwise keywords decide, with the
usual negatives (`0 errors`, `errors=0`, `no failures`) taken out first.
"""

from __future__ import annotations

import re

NORMAL, WARN, ERROR, FATAL = 0, 1, 2, 3

_LEVELS = {
    "trace": NORMAL, "debug": NORMAL, "info": NORMAL, "notice": NORMAL, "verbose": NORMAL,
    "warn": WARN, "warning": WARN,
    "error": ERROR, "err": ERROR, "severe": ERROR,
    "crit": FATAL, "critical": FATAL, "fatal": FATAL, "panic": FATAL, "emerg": FATAL,
    "alert": FATAL,
}
_LEVEL_RE = re.compile(
    r"(?:^|[\s\[|\"'=:(<])(TRACE|DEBUG|INFO|NOTICE|VERBOSE|WARN|WARNING|ERROR|ERR|SEVERE|CRIT|"
    r"CRITICAL|FATAL|PANIC|EMERG|ALERT|[Tt]race|[Dd]ebug|[Ii]nfo|[Nn]otice|[Ww]arn|[Ww]arning|"
    r"[Ee]rror|[Ff]atal|[Cc]ritical)(?=$|[\s\]|\"',:)>])")
_KLOG_RE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d")
_KLOG = {"I": NORMAL, "W": WARN, "E": ERROR, "F": FATAL}

_NEGATIVE_RE = re.compile(
    r"\b(?:0|no|zero|without|none)\s+(?:errors?|failures?|failed|warnings?|problems?)\b"
    r"|\b(?:errors?|failures?|failed|warnings?|err)\s*[=:]\s*(?:0|none|null|false|\[\])(?!\.?\d)"
    r"|\b(?:error|fail)[_-]?(?:rate|count|threshold|handling|handler|s?_?total)\b"
    r"|\bon[_-]?(?:error|failure)\b")
_FATAL_RE = re.compile(r"\b(?:FATAL|PANIC|CRITICAL|EMERG)\b|\bpanic(?:ked)?\b|\bSegmentation fault\b"
                       r"|\bcore dumped\b|\bOOMKilled\b|\bKilled\b")
_ERROR_RE = re.compile(
    r"\b(?:ERROR|ERR!|SEVERE|FAIL(?:ED|URE|S)?)\b|(?:Error|Exception)\b|\bTraceback\b"
    r"|\b(?:error|failed|failure|fatal)\b|\berror(?:\[E\d+\])?:|^E\s{2,}|✕|✗|❌"
    r"|\bCrashLoopBackOff\b|\bImagePullBackOff\b|\bErrImagePull\b|\bEvicted\b"
    r"|\bexit(?:ed)? (?:code|status) [1-9]\d*\b|\bnon-zero exit\b")
_WARN_RE = re.compile(r"\b(?:WARN(?:ING)?|[Ww]arning)\b|\bwarn(?:ing)?:|\bdeprecated\b|\bDEPRECATED\b"
                      r"|\b(?:status|code)[=:\" ]+5\d\d\b|\btimed? ?out\b|\bretry(?:ing)?\b")
_STRONG_RE = re.compile(r"\bTraceback\b|Exception\b|\bpanic(?:ked)?\b|\bSegmentation fault\b")

# A stack trace or error block continues on lines like these after its first line.
_TRACE_CONT_RE = re.compile(
    r"^(?:[ \t]+\S|Caused by:|\.\.\. \d+ more|Traceback |During handling of|The above exception|"
    r"goroutine \d+ \[|created by |[\w.$/]+(?:Error|Exception|Exit|Interrupt)\b|"
    r"[\w.*/()-]+\(.*\)$|stack backtrace:|note: |E\s|>\s|\s*\d+: |\s*-->|\s*\|)")
_TRACE_START_RE = re.compile(
    r"\bTraceback \(most recent call last\)|Exception\b|(?:^|\s)panic: |panicked at\b"
    r"|^goroutine \d+ \[|Error:|^\s*at [\w$.<>]+\(|stack backtrace:|^E\s{2,}|error(?:\[E\d+\])?:")


def level_of(line: str) -> int | None:
    """The explicit level a log line carries near its start, or None."""
    m = _KLOG_RE.match(line)
    if m:
        return _KLOG[m.group(1)]
    m = _LEVEL_RE.search(line, 0, 96)
    if m:
        return _LEVELS[m.group(1).lower()]
    return None


def severity(line: str) -> int:
    """NORMAL, WARN, ERROR or FATAL for one line."""
    if not line or line.isspace():
        return NORMAL
    lvl = level_of(line)
    if lvl is not None:
        if lvl < ERROR and _STRONG_RE.search(line):
            return ERROR
        return lvl
    body = _NEGATIVE_RE.sub(" ", line) if _NEG_HINT.search(line) else line
    if _FATAL_RE.search(body):
        return FATAL
    if _ERROR_RE.search(body):
        return ERROR
    if _WARN_RE.search(body):
        return WARN
    return NORMAL


_NEG_HINT = re.compile(r"\b(?:0|no|zero|without|none)\s|[=:]\s*(?:0|none|null|false|\[\])"
                       r"|_?(?:rate|count|threshold|handl|total)|on[_-]?(?:error|fail)", re.I)


def starts_trace(line: str) -> bool:
    return _TRACE_START_RE.search(line) is not None


def trace_end(lines: list[str], start: int, limit: int = 400) -> int:
    """Index after the last line of the stack trace or error block that begins at `start`."""
    n = len(lines)
    j = start + 1
    stop = min(n, start + limit)
    while j < stop:
        line = lines[j]
        if not line.strip():
            # a blank line ends a trace unless the trace obviously continues after it
            if j + 1 < stop and _TRACE_CONT_RE.match(lines[j + 1]) and lines[j + 1][:1] in " \t":
                j += 1
                continue
            break
        if not _TRACE_CONT_RE.match(line):
            break
        j += 1
    return j
