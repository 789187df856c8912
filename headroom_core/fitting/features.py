"""What scoring needs to know about one unit, computed once per unit content and cached.

A unit's features depend only on its content (its id is a content hash), so they are cached by
(unit id, encoding) in a bounded LRU: on each turn of a long session only the new units cost
anything — the token count alone of a 400k-token history is ~90 ms of tiktoken. The count comes
first (`FeatureCache.counted`): a turn that re-applies earlier decisions, or drops oldest first,
needs no more; the scoring features follow when a policy ranks the units.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Sequence

from .. import bm25, tokens
from ..compression.markers import RETRIEVE_TOOL, find_markers
from ..wire.common import Endpoint
from ..lru import LRU
from .signatures import output_signature
from .units import Conversation, Unit

CACHE_ENTRIES = 20_000
MAX_IDENTIFIERS = 64  # per unit, first occurrences: call arguments and prose come before outputs
PROFILE_TERMS = 32  # a unit's most frequent terms, what BM25 ranks per request
PROFILE_REPEAT = 2  # term frequency kept up to this count
RUN_MEMO = 50_000  # word runs whose identifiers are remembered (code repeats its names)

# Strong signs that something went wrong, anywhere in the unit: each with a literal that every
# match of its pattern contains. One alternation of all of them was tried at every position of
# a megabyte of history (~0.3 µs a character); a substring search for the literal decides
# nearly every unit, and a pattern runs only over a unit that holds its literal.
_STRONG_SIGNS: tuple[tuple[str, "re.Pattern[str] | None"], ...] = tuple(
    (literal, re.compile(pattern, re.M) if pattern else None) for literal, pattern in (
        ("Traceback (most recent call last)", None),  # the literal is the whole pattern
        ("Error", r"^\s*\w*Error(?::|$)"),
        ("Exception", r"^\s*\w*Exception(?::|$)"),
        ("panic: ", r"^panic: "),
        ("panicked at ", None),
        ("Segmentation fault", r"\bSegmentation fault\b"),
        ("core dumped", r"\bcore dumped\b"),
        ("FAILED", r"\bFAILED\b"),
        ("FAIL", r"^FAIL\b"),
        ("FATAL", r"\bFATAL\b"),
        ("npm ERR!", None),
        ("error", r"^error(?:\[E\d+\])?:"),
        ("exit", r"\bexit(?:ed)?(?: with)? (?:code|status) [1-9]\d*"),
        ("non-zero exit", r"\bnon-zero exit\b"),
        ("command not found", r"\bcommand not found\b"),
        ("No such file or directory", r"\bNo such file or directory\b"),
        ("Permission denied", r"\bPermission denied\b"),
        ("BUILD FAILURE", r"\bBUILD FAILURE\b"),
        ("AssertionError", r"\bAssertionError\b"),
    ))
# The same signs as one pattern: what `error_level` decides, sign by sign (tests compare them).
STRONG_ERROR = re.compile("|".join(p.pattern if p else re.escape(lit) for lit, p in _STRONG_SIGNS),
                          re.M)
WEAK_ERROR = re.compile(r"\b(?:error|errors|failed|failure|failing|exception|denied|invalid)\b", re.I)
# Every weak match, lower-cased, contains one of these stems — except through "ı" and "İ", which
# match "i" under IGNORECASE but lower-case to other letters: a text with them takes the regex.
_WEAK_STEMS = ("error", "fail", "exception", "denied", "invalid")

_PATH_ALT = r"(?:[\w.-]+/)+[\w.-]+"  # paths with a directory
_NAME_ALTS = (
    r"\b[\w-]+\.(?:py|pyi|js|mjs|ts|tsx|jsx|go|rs|java|kt|rb|php|c|h|cc|cpp|hpp|cs|swift|scala|md"
    r"|json|ya?ml|toml|ini|cfg|conf|sh|sql|html|css|txt|log|lock|proto|tf)\b"  # bare file names
    r"|\b[A-Za-z_][A-Za-z0-9]*_[A-Za-z0-9_]+\b"  # snake_case
    r"|\b[a-z]+[A-Z][A-Za-z0-9]+\b|\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*\b"  # camelCase, PascalCase
    r"|\b[0-9a-f]{7,40}\b")  # commit hashes, short ids
IDENTIFIER = re.compile(_PATH_ALT + "|" + _NAME_ALTS)
# The same without the path alternative, for runs without "/" (where it can never match): it
# is the costly one, retried at every position of a word (quadratic in a long run).
_NAMES = re.compile(_NAME_ALTS)
RUN_MEMO_CHARS = 256  # longer runs are not remembered
_HEX_ONLY = re.compile(r"[0-9a-f]+")
# Every identifier match lies inside one run of these characters, and \b at a run's edge sees
# a non-word character either way: the matches in a text are those of its runs, in order.
_RUN = re.compile(r"[\w./-]+")
_MARKER_SPAN = re.compile(r'\[headroom: [^\n]*?call ' + RETRIEVE_TOOL +
                          r'\(hash=\\?"[0-9a-f]{16,64}\\?"\) for the rest\]')


@dataclass(frozen=True)
class UnitText:
    """A unit as the whole-request count sees it: its text and that text's tokens."""

    text: str
    tokens: int


@dataclass(frozen=True)
class UnitFeatures:
    text: str  # what the model reads of this unit
    tokens: int
    error: float  # 1: strong error indicator, 0.5: repeated weak ones, 0.25: one weak one
    identifiers: frozenset[str]
    patterns: tuple[tuple[str, str], ...]  # (tool name, output signature) of its tool results
    profile: str  # its most frequent terms, repeated by frequency: a short document for BM25
    # (tool name, marker hash) of its tool results that are headroom renderings: TOIN learned
    # the originals' patterns, which a rendering's own signature is not (scoring resolves them)
    rendered: tuple[tuple[str, str], ...] = ()
    # the profile counted for BM25 once with the features, rather than on every request
    terms: bm25.CountedDoc | None = field(default=None, compare=False, repr=False)

    def profile_terms(self) -> bm25.CountedDoc:
        return self.terms if self.terms is not None else bm25.CountedDoc(self.profile)


def error_level(text: str, flagged: bool = False) -> float:
    """1.0, 0.5 or 0.25 as documented on UnitFeatures.error; what STRONG_ERROR.search and
    WEAK_ERROR.finditer over the whole text decide, without running them where they cannot
    match."""
    if flagged or any(lit in text and (rx is None or rx.search(text)) for lit, rx in _STRONG_SIGNS):
        return 1.0
    if "\u0130" not in text and "\u0131" not in text:
        low = text.lower()
        if not any(stem in low for stem in _WEAK_STEMS):
            return 0.0
    weak = 0
    for _ in WEAK_ERROR.finditer(text):
        weak += 1
        if weak >= 3:
            return 0.5
    return 0.25 if weak else 0.0


def term_profile(text: str) -> str:
    """A unit's most frequent BM25 terms, each repeated by its (capped) frequency.

    BM25 over these short profiles costs a few milliseconds per request for a 500-message
    history, where ranking the full texts would tokenize a megabyte on every request.
    """
    counts = Counter(bm25.term_counts(text))
    return " ".join(" ".join([term] * min(n, PROFILE_REPEAT))
                    for term, n in counts.most_common(PROFILE_TERMS))


_run_memo: dict[str, tuple[str, ...]] = {}


def _run_identifiers(run: str) -> tuple[str, ...]:
    """The identifiers `identifiers_of` takes from one run of word characters, in order."""
    found = _run_memo.get(run)
    if found is None:
        out = []
        for m in (IDENTIFIER if "/" in run else _NAMES).finditer(run):
            ident = m.group(0).strip(".-/")
            if len(ident) < 5:
                continue
            if _HEX_ONLY.fullmatch(ident) and (ident.isdigit() or ident.isalpha()):
                continue  # a hex-looking run without both digits and letters is an ordinary word/number
            out.append(ident)
        found = tuple(out)
        if len(run) <= RUN_MEMO_CHARS:
            if len(_run_memo) >= RUN_MEMO:
                _run_memo.clear()  # a pure function's memo: forgetting it costs time, never a result
            _run_memo[run] = found
    return found


def clear_memo() -> None:
    """Forget the identifiers remembered per word run (tests, benchmarks of first sight)."""
    _run_memo.clear()


def identifiers_of(text: str) -> frozenset[str]:
    """The first MAX_IDENTIFIERS distinct paths, file names, snake/camel case names and hex ids:
    the matches of IDENTIFIER over the text, found run by run (see _RUN)."""
    found: dict[str, None] = {}
    for match in _RUN.finditer(text):  # lazily: a long output usually gives its 64 early
        run = match.group()
        # Shorter than 5, or plain lower-case letters, or digits: nothing it could match is kept.
        if len(run) < 5 or (run.isascii() and ((run.isalpha() and run.islower()) or run.isdigit())):
            continue
        for ident in _run_identifiers(run):
            found.setdefault(ident, None)
            if len(found) >= MAX_IDENTIFIERS:
                return frozenset(found)
    return frozenset(found)


class _Entry:
    """A cached unit: its count at once, its scoring features when first asked for."""

    __slots__ = ("counted", "features")

    def __init__(self, counted: UnitText) -> None:
        self.counted = counted
        self.features: UnitFeatures | None = None


class FeatureCache:
    """Bounded LRU of a unit's UnitText and UnitFeatures by (unit id, tokenizer encoding)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._data = LRU(entries)

    def _entry(self, conv: Conversation, unit: Unit, endpoint: Endpoint, model: str | None,
               variant: str) -> _Entry:
        key = (unit.uid + variant, tokens.encoding_name_for_model(model))
        hit = self._data.get(key)
        if hit is not None:
            return hit
        text = unit_text(conv, unit, endpoint)
        return self._data.setdefault(key, _Entry(UnitText(text, tokens.count_text(text, model))))

    def counted(self, conv: Conversation, unit: Unit, endpoint: Endpoint, model: str | None,
                variant: str = "") -> UnitText:
        """The unit's text and token count as its messages stand now; `variant` names a
        re-rendering of the unit (compressed harder) that is a pure function of its content."""
        return self._entry(conv, unit, endpoint, model, variant).counted

    def features(self, conv: Conversation, unit: Unit, endpoint: Endpoint,
                 model: str | None, variant: str = "") -> UnitFeatures:
        """The unit's scoring features (see `counted` for `variant`)."""
        entry = self._entry(conv, unit, endpoint, model, variant)
        feats = entry.features
        if feats is None:  # two threads may both compute it: the same value either way
            feats = entry.features = compute_features(conv, unit, endpoint, model, entry.counted)
        return feats

    def clear(self) -> None:
        self._data.clear()


class LazyFeatures(Sequence[UnitFeatures]):
    """Scoring features of a conversation's units, computed when a policy first reads them:
    RollingWindow, position-only scoring and turns that only re-apply earlier decisions never
    do. `variants[pos]` names the rendering the unit's messages are in now (see `counted`)."""

    def __init__(self, cache: FeatureCache, conv: Conversation, endpoint: Endpoint,
                 model: str | None, variants: Sequence[str]) -> None:
        self._cache, self._conv, self._endpoint, self._model = cache, conv, endpoint, model
        self._variants = variants
        self._feats: list[UnitFeatures | None] = [None] * len(conv.units)

    def __len__(self) -> int:
        return len(self._feats)

    def __getitem__(self, pos: Any) -> Any:
        if isinstance(pos, slice):
            return [self[p] for p in range(*pos.indices(len(self)))]
        feats = self._feats[pos]
        if feats is None:
            feats = self._feats[pos] = self._cache.features(
                self._conv, self._conv.units[pos], self._endpoint, self._model, self._variants[pos])
        return feats


def unit_text(conv: Conversation, unit: Unit, endpoint: Endpoint) -> str:
    """The unit's text exactly as the whole-request token count sees it."""
    body = {conv.key: conv.items[unit.start:unit.end]}
    return "\n".join(tokens.request_texts(body, endpoint))


def rendering_hash(text: str) -> str | None:
    """The marker hash of a headroom rendering (every marker in it names one original), else
    None: an output that quotes markers of several originals is an output of its own."""
    hashes = find_markers(text)
    return hashes[0] if len(hashes) == 1 else None


def compute_features(conv: Conversation, unit: Unit, endpoint: Endpoint, model: str | None,
                     counted: UnitText | None = None) -> UnitFeatures:
    """The unit's features; `counted` is its UnitText when already known."""
    if counted is None:
        text = unit_text(conv, unit, endpoint)
        counted = UnitText(text, tokens.count_text(text, model))
    text = counted.text
    flagged = any(r.is_error for r in unit.tool_results)
    patterns: dict[tuple[str, str], None] = {}
    rendered: dict[tuple[str, str], None] = {}
    for r in unit.tool_results:
        if not r.tool_name:
            continue
        origin = rendering_hash(r.text)
        if origin is not None:
            rendered[(r.tool_name, origin)] = None
        else:
            patterns[(r.tool_name, output_signature(r.text))] = None
    content = _MARKER_SPAN.sub(" ", text) if "[headroom: " in text else text
    profile = term_profile(content)
    return UnitFeatures(text=text, tokens=counted.tokens, error=error_level(text, flagged),
                        identifiers=identifiers_of(content), patterns=tuple(patterns),
                        profile=profile, rendered=tuple(rendered), terms=bm25.CountedDoc(profile))
