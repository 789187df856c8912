"""Keep chosen spans and the line structure verbatim through LLMLingua-2 word dropping.

LLMLingua-2 labels words keep/drop and rebuilds the text from the kept *tokens*, so on its own it
loses newlines, indentation, letter case (uncased tokenizers) and any span it chooses to cut in
half. Before compression every protected span — line breaks with their indentation and list or
heading markers, the caller's forced strings (identifiers, paths, numbers, query terms), and
strings the tokenizer would read as its own special tokens — is replaced by one placeholder that
is a single special token forced to stay (probability 1 in llmlingua's `force_tokens`). Every
placeholder therefore survives, in order, and `restore` puts the spans back one by one.

llmlingua's own `force_tokens` replaces strings with `str.replace` over the whole text (so `id`
would also hit `video`) and allows at most 100 of them; one placeholder restored by position has
neither limit. Pure code: no torch here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

# llmlingua registers "[NEW0]".."[NEW{n-1}]" as additional special tokens of the tokenizer;
# "[NEW0]" always exists, is one token in every tokenizer, and is never merged with a neighbour.
PLACEHOLDER = "[NEW0]"

# Line breaks with surrounding blanks, plus what opens the next line when it shapes the document:
# a whole table row or heading (short, and what a reader navigates by), or a bullet,
# numbered-item or quote marker.
_LINE_OPENER = r"(?:\|[^\n]*|#{1,6}[ \t][^\n]*|(?:[-*+>]|\d{1,3}[.)])[ \t]+)"
_STRUCTURE = (
    rf"[ \t]*\n\s*{_LINE_OPENER}?"          # a line break and what opens the next line
    rf"|\A\s*{_LINE_OPENER}"                # the same at the very start of the text
    r"|\A\s+|\s+\Z"                          # leading and trailing blanks
    r"|```.*?(?:```|\Z)"                      # fenced code blocks stay whole
    # the tokenizers' own special tokens, and our placeholder family, written literally in a text
    r"|\[(?:NEW\d+|CLS|SEP|PAD|UNK|MASK)\]|</?s>|<(?:pad|unk|mask)>"
)


@dataclass(frozen=True)
class Protected:
    """A text with its protected spans replaced by PLACEHOLDER, and the spans in order."""

    text: str
    spans: tuple[str, ...]
    # For each span: was the original text blank (or the text's edge) just before / after it?
    # Decides whether a restored span is glued to its neighbour or set apart by a space.
    blank_before: tuple[bool, ...]
    blank_after: tuple[bool, ...]


def _forced_pattern(force: Sequence[str]) -> str:
    """One regex for all forced strings, built as a trie so matching stays linear in the text
    (an alternation of thousands of literals is tried one by one at every position).

    The longest forced string wins at a position; a string that begins or ends with a word
    character matches only at a word edge there (forcing "id" must not take "video" apart).
    """
    trie: dict = {}
    for f in force:
        if f and f.strip():
            node = trie
            for ch in f:
                node = node.setdefault(ch, {})
            node[""] = {}  # a forced string ends here

    def emit(node: dict, last: str) -> str:
        alts = []
        for ch in sorted(k for k in node if k):
            literal, child = ch, node[ch]
            while len(child) == 1 and "" not in child:  # a chain with no branch: one literal
                (nxt, child), = child.items()
                literal += nxt
            alts.append(re.escape(literal) + emit(child, literal[-1]))
        if "" in node:  # tried last, so longer matches win
            alts.append(r"(?!\w)" if _wordy(last) else "")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    if not trie:
        return ""
    heads = []
    for ch in sorted(trie):
        sub = emit({ch: trie[ch]}, "")
        heads.append((r"(?<!\w)" if _wordy(ch) else "") + sub)
    return "|".join(heads)


def protect(text: str, force: Sequence[str] = ()) -> Protected:
    """Replace the structure, special-token look-alikes and every occurrence of `force`."""
    forced = _forced_pattern(force)
    pattern = re.compile(_STRUCTURE + ("|" + forced if forced else ""), re.DOTALL)
    out: list[str] = []
    spans: list[str] = []
    before: list[bool] = []
    after: list[bool] = []
    pos = 0
    for m in pattern.finditer(text):
        if m.end() == m.start():
            continue
        start, end = m.span()
        out.append(text[pos:start])
        out.append(f" {PLACEHOLDER} ")
        spans.append(m.group(0))
        before.append(start == 0 or text[start - 1].isspace())
        after.append(end == len(text) or text[end].isspace())
        pos = end
    out.append(text[pos:])
    return Protected("".join(out), tuple(spans), tuple(before), tuple(after))


# Word-piece tokenizers rebuild text as space-separated tokens ("word , word ( x )"); these undo
# the spaces no writer would have put there. Placeholders are opaque to them.
_SPACE_BEFORE = re.compile(r" +(?=[,.;:!?%)\]}])")
_SPACE_AFTER = re.compile(r"(?<=[(\[{]) +(?!NEW0\])")
_APOSTROPHE = re.compile(r"(?<=\w) ' (?=\w)")
_SPACES = re.compile(r"[ \t]{2,}")


def tidy(compressed: str) -> str:
    """Remove tokenizer spacing around punctuation in a compressed (placeholder-bearing) text."""
    text = _APOSTROPHE.sub("'", compressed)
    text = _SPACE_BEFORE.sub("", text)
    text = _SPACE_AFTER.sub("", text)
    return _SPACES.sub(" ", text)


def restore(compressed: str, protected: Protected) -> str | None:
    """Put the spans back in order; None if the placeholders did not all survive (fail open)."""
    pieces = [p.strip(" \t") for p in compressed.split(PLACEHOLDER)]
    if len(pieces) != len(protected.spans) + 1:
        return None
    out: list[str] = [pieces[0]]
    tail = pieces[0][-1:]  # last character written so far
    for i, span in enumerate(protected.spans):
        nxt = pieces[i + 1]
        if tail and not tail.isspace() and not span[0].isspace():
            # Set apart from a word (the original neighbour may have been dropped); glue to
            # punctuation that stood right before the span, as in "(foo".
            if protected.blank_before[i] or _wordy(tail):
                out.append(" ")
        out.append(span)
        if nxt and not span[-1].isspace():
            if protected.blank_after[i] or _wordy(nxt[0]):
                out.append(" ")
        out.append(nxt)
        tail = nxt[-1:] or span[-1:]
    return "".join(out)


def _wordy(ch: str) -> bool:
    return ch.isalnum() or ch == "_"
