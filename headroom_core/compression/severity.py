"""Which lines report a problem: severity of one line, and where a stack trace ends.

Shared by the log, text and table compressors. Explicit level tokens win (`INFO ... error` is
not an error line unless it also carries an exception); otherwise keywords decide, with the
usual negatives (`0 errors`, `errors=0`, `no failures`) taken out first.
"""

from __future__ import annotations

import re

from . import chunked

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
    r"\b(?:ERROR|SEVERE|FAIL(?:ED|URE|S)?)\b|\bERR!|(?:Error|Exception)\b|\bTraceback\b"
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


# Problems spelled in digits, which line keys (digits deleted) cannot tell apart from their
# healthy twins: each has a literal anchor so a whole-text scan stays fast.
_NUMERIC_PROBLEMS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ('" ', re.compile(r'" ([45])\d\d ')),  # access log: "GET / HTTP/1.1" 502 ...
    ("status", re.compile(r"status(?:_code)?[=:]\s*\"?([45])\d\d\b")),
    ("exit", re.compile(r"exit(?:ed)?(?: with)? (?:code|status)[ =:]*[1-9]()")),
    ("rror", re.compile(r"rrors?[=:] ?[1-9]()")),
    ("ail", re.compile(r"ail(?:ed|ures?)[=:] ?[1-9]()")),
    (" fail", re.compile(r" fail(?:ed|ures?)\b()")),
    (" error", re.compile(r" errors?\b()")),
)
_NUMERIC_SPAN = 64  # longest match the scan allows for (a whitespace run inside one could be longer)
_COUNT_BEFORE_RE = re.compile(r"(?:^|[^\w.])0*([1-9]\d*)$")


# Every problem line contains one of these (lower-cased); a line without any is NORMAL
# without running the regexes (a few substring tests instead of several regex searches).
_HINTS = ("err", "fail", "fatal", "warn", "crit", "panic", "exception", "traceback", "severe",
          "emerg", "timed out", "timeout", "retry", "deprecat", "killed", "segmentation",
          "core dump", "crashloop", "backoff", "evicted", "exit", "non-zero", "goroutine",
          "stack backtrace", "✕", "✗", "❌")


def _hinted(line: str) -> bool:
    if line[:2] == "E " or (line[:1] in "EFW" and line[1:5].isdigit()) or "ALERT" in line:
        return True
    return _hint_in(line.lower())


def _hint_in(low: str) -> bool:
    # Spelled out: about twice as fast as any() over _HINTS, and this runs once per template.
    return ("err" in low or "fail" in low or "fatal" in low or "warn" in low or "crit" in low
            or "panic" in low or "exception" in low or "traceback" in low or "severe" in low
            or "emerg" in low or "timed out" in low or "timeout" in low or "retry" in low
            or "deprecat" in low or "killed" in low or "segmentation" in low or "core dump" in low
            or "crashloop" in low or "backoff" in low or "evicted" in low or "exit" in low
            or "non-zero" in low or "goroutine" in low or "stack backtrace" in low
            or "✕" in low or "✗" in low or "❌" in low)


def candidate_offsets(text: str, low: str | None = None) -> list[int]:
    """Offsets in `text` where a problem line may be: hint words, klog E/F/W lines, pytest `E`
    lines, ALERT. For outputs whose lines are nearly all distinct, scanning the text once per
    hint is cheaper than testing every line. `low`: the text lower-cased, if already made."""
    low = chunked.lower(text) if low is None else low
    found: list[int] = []
    ascii_only = text.isascii()
    for hint in _HINTS:
        if ascii_only and not hint.isascii():
            continue
        found.extend(chunked.find_all(low, hint))
    for needle, shift in (("\nE", 1), ("\nF", 1), ("\nW", 1), ("ALERT", 0)):
        found.extend(pos + shift for pos in chunked.find_all(text, needle))
    if text[:1] in "EFW":
        found.append(0)
    return found


def numeric_problem_offsets(text: str) -> list[tuple[int, int]]:
    """(offset, severity) of problems written in digits anywhere in `text`."""
    found: list[tuple[int, int]] = []
    for anchor, rx in _NUMERIC_PROBLEMS:  # each pattern starts with its anchor: one scan each
        for m in chunked.finditer(rx, text, _NUMERIC_SPAN):
            # "3 failed" counts, "0 failed" and "v1.2 errors" do not
            if anchor[0] == " " and anchor != '" ' and not _COUNT_BEFORE_RE.search(text, max(0, m.start() - 12), m.start()):
                continue
            found.append((m.start(), WARN if m.group(1) == "4" else ERROR))
    return found


_LEVEL_WORDS = ("INFO", "DEBUG", "WARN", "ERR", "TRACE", "FATAL", "CRIT", "SEVERE", "PANIC",
                "NOTICE", "EMERG", "ALERT", "VERBOSE")


def has_level_word(head: str) -> bool:
    """Cheap test before the level regex: some level word, in any case, in `head`."""
    up = head.upper()
    return any(w in up for w in _LEVEL_WORDS)


def level_of(line: str) -> int | None:
    """The explicit level a log line carries near its start, or None."""
    m = _KLOG_RE.match(line)
    if m:
        return _KLOG[m.group(1)]
    if not has_level_word(line[:96]):
        return None
    m = _LEVEL_RE.search(line, 0, 96)
    if m:
        return _LEVELS[m.group(1).lower()]
    return None


def severity(line: str) -> int:
    """NORMAL, WARN, ERROR or FATAL for one line."""
    if not line or line.isspace() or not _hinted(line):
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
    low = line.lower()
    if line[:2] != "E " and not ("traceback" in low or "exception" in low or "panic" in low
                                 or "goroutine" in low or "error" in low or "at " in low
                                 or "stack backtrace" in low):
        return False
    return _TRACE_START_RE.search(line) is not None


_FRAME_RE = re.compile(r"^\s*(?:at [\w$.<>/]|File \"|\d+: [\w<]|\.\.\. \d+ more|Caused by:|Traceback |goroutine \d+ )"
                       r"|^\t\S|^[\w.$]+(?:Error|Exception)\b")


def trace_follows(lines: list[str], i: int) -> bool:
    """Whether a stack trace starts at line i or right after it (so it is worth following)."""
    if starts_trace(lines[i]):
        return True
    return i + 1 < len(lines) and _FRAME_RE.match(lines[i + 1]) is not None


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
