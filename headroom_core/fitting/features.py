"""What scoring needs to know about one unit, computed once per unit content and cached.

A unit's features depend only on its content (its id is a content hash), so they are cached by
(unit id, encoding) in a bounded LRU: on each turn of a long session only the new units cost
anything — the token count alone of a 400k-token history is ~90 ms of tiktoken.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass

from .. import bm25, tokens
from ..compression.markers import RETRIEVE_TOOL, find_markers
from ..wire.common import Endpoint
from .toin import output_signature
from .units import Conversation, Unit

CACHE_ENTRIES = 20_000
MAX_IDENTIFIERS = 64  # per unit, first occurrences: call arguments and prose come before outputs
PROFILE_TERMS = 32  # a unit's most frequent terms, what BM25 ranks per request
PROFILE_REPEAT = 2  # term frequency kept up to this count

# Strong signs that something went wrong, anywhere in the unit.
_STRONG_ERROR = re.compile(
    r"Traceback \(most recent call last\)|^\s*\w*(?:Error|Exception)(?::|$)|^panic: |panicked at "
    r"|\bSegmentation fault\b|\bcore dumped\b|\bFAILED\b|^FAIL\b|\bFATAL\b|npm ERR!|^error(?:\[E\d+\])?:"
    r"|\bexit(?:ed)?(?: with)? (?:code|status) [1-9]\d*|\bnon-zero exit\b|\bcommand not found\b"
    r"|\bNo such file or directory\b|\bPermission denied\b|\bBUILD FAILURE\b|\bAssertionError\b",
    re.M)
_WEAK_ERROR = re.compile(r"\b(?:error|errors|failed|failure|failing|exception|denied|invalid)\b", re.I)

_IDENTIFIER = re.compile(
    r"(?:[\w.-]+/)+[\w.-]+"  # paths with a directory
    r"|\b[\w-]+\.(?:py|pyi|js|mjs|ts|tsx|jsx|go|rs|java|kt|rb|php|c|h|cc|cpp|hpp|cs|swift|scala|md"
    r"|json|ya?ml|toml|ini|cfg|conf|sh|sql|html|css|txt|log|lock|proto|tf)\b"  # bare file names
    r"|\b[A-Za-z_][A-Za-z0-9]*_[A-Za-z0-9_]+\b"  # snake_case
    r"|\b[a-z]+[A-Z][A-Za-z0-9]+\b|\b[A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*\b"  # camelCase, PascalCase
    r"|\b[0-9a-f]{7,40}\b")  # commit hashes, short ids
_HEX_ONLY = re.compile(r"[0-9a-f]+")
# Our own markers (the format of compression/markers.py, quotes JSON-escaped or not): the same
# boilerplate in every rendering, which would make renderings reference and resemble each other.
_MARKER_SPAN = re.compile(r'\[headroom: [^\n]*?call ' + RETRIEVE_TOOL +
                          r'\(hash=\\?"[0-9a-f]{16,64}\\?"\) for the rest\]')


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


def error_level(text: str, flagged: bool = False) -> float:
    if flagged or _STRONG_ERROR.search(text):
        return 1.0
    weak = 0
    for _ in _WEAK_ERROR.finditer(text):
        weak += 1
        if weak >= 3:
            return 0.5
    return 0.25 if weak else 0.0


def term_profile(text: str) -> str:
    """A unit's most frequent BM25 terms, each repeated by its (capped) frequency.

    BM25 over these short profiles costs a few milliseconds per request for a 500-message
    history, where ranking the full texts would tokenize a megabyte on every request.
    """
    counts = Counter(bm25.tokenize(text))
    return " ".join(" ".join([term] * min(n, PROFILE_REPEAT))
                    for term, n in counts.most_common(PROFILE_TERMS))


def identifiers_of(text: str) -> frozenset[str]:
    found: dict[str, None] = {}
    for m in _IDENTIFIER.finditer(text):
        ident = m.group(0).strip(".-/")
        if len(ident) < 5:
            continue
        if _HEX_ONLY.fullmatch(ident) and (ident.isdigit() or ident.isalpha()):
            continue  # a hex-looking run without both digits and letters is an ordinary word/number
        found.setdefault(ident, None)
        if len(found) >= MAX_IDENTIFIERS:
            break
    return frozenset(found)


class FeatureCache:
    """Bounded LRU of UnitFeatures by (unit id, tokenizer encoding)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        self._entries = entries
        self._data: "OrderedDict[tuple[str, str], UnitFeatures]" = OrderedDict()
        self._lock = threading.Lock()

    def features(self, conv: Conversation, unit: Unit, endpoint: Endpoint,
                 model: str | None, variant: str = "") -> UnitFeatures:
        """Features of the unit's messages as they stand now; `variant` names a re-rendering
        of the unit (compressed harder) that is a pure function of its content."""
        key = (unit.uid + variant, tokens.encoding_name_for_model(model))
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
                return hit
        feats = compute_features(conv, unit, endpoint, model)
        with self._lock:
            self._data[key] = feats
            while len(self._data) > self._entries:
                self._data.popitem(last=False)
        return feats

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


def unit_text(conv: Conversation, unit: Unit, endpoint: Endpoint) -> str:
    """The unit's text exactly as the whole-request token count sees it."""
    body = {conv.key: conv.items[unit.start:unit.end]}
    return "\n".join(tokens.request_texts(body, endpoint))


def rendering_hash(text: str) -> str | None:
    """The marker hash of a headroom rendering (every marker in it names one original), else
    None: an output that quotes markers of several originals is an output of its own."""
    hashes = find_markers(text)
    return hashes[0] if len(hashes) == 1 else None


def compute_features(conv: Conversation, unit: Unit, endpoint: Endpoint,
                     model: str | None) -> UnitFeatures:
    text = unit_text(conv, unit, endpoint)
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
    return UnitFeatures(text=text, tokens=tokens.count_text(text, model),
                        error=error_level(text, flagged), identifiers=identifiers_of(content),
                        patterns=tuple(patterns), profile=term_profile(content),
                        rendered=tuple(rendered))
