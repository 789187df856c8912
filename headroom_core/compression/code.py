"""Source code: imports, module-level statements, class and function signatures and the first
line of each docstring kept; long function bodies replaced by a one-line marker, in place.

Python is read by indentation, the brace languages (JavaScript, TypeScript, Go, Rust, Java, C,
C++, C#, Kotlin, Swift, PHP) by brace depth with strings and comments ignored. No tree-sitter:
where the structure cannot be read with confidence (unbalanced braces), nothing is elided.
"""

from __future__ import annotations

import re

from .base import CompressContext, Omitted, Rendering
from .lines import query_terms, split_lines

_PY_DEF_RE = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")
_DOC_START_RE = re.compile(r"^\s*[rRbBuU]?(?:\"\"\"|''')")
_STR = r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\''
_STRIP_PY_RE = re.compile(_STR + r"|#.*$")
_STRIP_RE = re.compile(_STR + r"|`(?:[^`\\\n]|\\.)*`|//.*$|/\*.*?\*/")
_CONTROL_RE = re.compile(r"^\s*(?:\}\s*)?(?:if|for|while|switch|catch|else|do|try|return|with|synchronized|using|lock|foreach|match|loop|select|unsafe|finally)\b")
_FUNC_HINT_RE = re.compile(r"\)\s*(?:(?::|->)\s*[^{=]+|throws [\w., ]+|const|override|noexcept|async)?\s*\{$|=>\s*\{$|^\s*(?:pub\s+)?(?:async\s+)?fn\s|^\s*func\s")
_NAME_RE = re.compile(r"(\w+)\s*(?:<[^>]*>)?\s*\(")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _lead(line: str) -> str:
    return line[: _indent(line)]


def _python_bodies(lines: list[str], min_body: int) -> list[tuple[int, int, str, str]]:
    """(first omitted line, end, function name, indent) for long Python function bodies."""
    out = []
    n = len(lines)
    i = 0
    while i < n:
        m = _PY_DEF_RE.match(lines[i])
        if not m:
            i += 1
            continue
        ind = len(m.group(1))
        # the signature may span lines: it ends at the first line ending with ':' at depth 0
        depth = 0
        k = i
        while k < n and k - i < 40:
            code = _STRIP_PY_RE.sub("", lines[k])
            depth += code.count("(") + code.count("[") - code.count(")") - code.count("]")
            if depth <= 0 and code.rstrip().endswith(":"):
                break
            k += 1
        if k >= n or k - i >= 40:
            i += 1
            continue
        j = k + 1
        while j < n and (not lines[j].strip() or _indent(lines[j]) > ind):
            j += 1
        end = j
        while end > k + 1 and not lines[end - 1].strip():
            end -= 1  # trailing blank lines belong to the gap after the function
        start = k + 1
        while start < end and not lines[start].strip():
            start += 1
        if start < end and _DOC_START_RE.match(lines[start]):
            start += 1  # the docstring's first line stays
        if end - start >= min_body:
            out.append((start, end, m.group(2), _lead(lines[start])))
            i = end
        else:
            i = k + 1
    return out


def _brace_bodies(lines: list[str], min_body: int) -> list[tuple[int, int, str, str]] | None:
    stripped = []
    in_block = False
    for line in lines:
        s = line
        if in_block:
            end = s.find("*/")
            if end == -1:
                stripped.append("")
                continue
            s = s[end + 2:]
            in_block = False
        s = _STRIP_RE.sub("", s)
        if "/*" in s:
            s = s[: s.index("/*")]
            in_block = True
        stripped.append(s)
    depth = 0
    opens: list[tuple[int, int, bool]] = []  # (line, depth before, is a function)
    out = []
    skip_until = -1
    for i, s in enumerate(stripped):
        for ch in s:
            if ch == "{":
                opens.append((i, depth, False))
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth < 0 or not opens:
                    return None
                line_no, _, _ = opens.pop()
                head = stripped[line_no].rstrip()
                if (line_no > skip_until and i - line_no - 1 >= min_body and head.endswith("{")
                        and not _CONTROL_RE.match(head) and _FUNC_HINT_RE.search(head)
                        and i > line_no):
                    name = _NAME_RE.search(head)
                    out.append((line_no + 1, i, name.group(1) if name else "function", _lead(lines[line_no + 1])))
    if depth != 0:
        return None
    # keep outermost bodies only (an inner function goes with its elided parent)
    out.sort()
    result = []
    last_end = -1
    for start, end, name, ind in out:
        if start >= last_end:
            result.append((start, end, name, ind))
            last_end = end
    return result


def _unless_asked_about(lines: list[str], bodies: list[tuple[int, int, str, str]], query: str) -> list:
    """Drop from elision the bodies the request names: the function itself, or a distinctive
    term of the request that only a few bodies contain."""
    terms = query_terms(query)
    if not terms:
        return bodies
    texts = ["\n".join(lines[a:b]).lower() for a, b, _, _ in bodies]
    wanted: set[int] = set()
    for term in terms:
        hits = [k for k, (body, (_, _, name, _)) in enumerate(zip(texts, bodies)) if term == name.lower() or term in body]
        if len(hits) <= 2:
            wanted.update(hits)
    return [b for k, b in enumerate(bodies) if k not in wanted]


def compress(text: str, ctx: CompressContext, language: str | None = None) -> Rendering | None:
    lines = split_lines(text)
    if len(lines) < 20:
        return None
    min_body = 3 if ctx.harder else 6
    if language == "python":
        bodies = _python_bodies(lines, min_body)
        comment = "# "
    else:
        bodies = _brace_bodies(lines, min_body)
        comment = "// "
    bodies = _unless_asked_about(lines, bodies, ctx.query)
    if not bodies:
        return None
    out: list[str] = []
    omitted = 0
    i = 0
    for start, end, name, ind in bodies:
        out.extend(lines[i:start])
        count = end - start
        out.append(ind + comment + ctx.marker(f"body of {name}: {count} lines omitted (lines {start + 1}-{end})"))
        omitted += count
        i = end
    out.extend(lines[i:])
    return Rendering("\n".join(out), "code", Omitted(omitted, "lines"))
