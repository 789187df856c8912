"""Canonical JSON of messages, the text a unit's id hashes: `json.dumps(value, ensure_ascii=False,
separators=(",", ":"), default=str)`, byte for byte, made cheaper for re-sent histories.

Agents re-send the whole history every turn, each time as new string objects parsed from the
body, and escaping a megabyte of tool outputs into JSON was most of the cost of cutting a
conversation into units. The standard library's C encoder takes the string-escaping function as
a parameter; ours remembers the escaped form of long strings (a dict lookup hashes and compares
a string several times faster than escaping it), so the structure is still written by the same
C code and the text is the same as `json.dumps` gives. Where that encoder is missing or does not
agree with `json.dumps` on a sample, `json.dumps` itself is used.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any, Callable

from ..jsonfmt import JsonNumber

try:
    from json.encoder import c_make_encoder, encode_basestring
except ImportError:  # a Python without the C accelerator
    c_make_encoder = None  # type: ignore[assignment]
    encode_basestring = None  # type: ignore[assignment]

MEMO_MIN_CHARS = 256  # shorter strings are escaped directly: a lookup would cost as much
# A value whose long strings are shorter than this is written faster by the plain encoder
# (measured break-even of a memo hit vs escaping in C: ~1,000 characters).
MEMO_WORTH_CHARS = 1024
MEMO_MAX_CHARS = 16_000_000  # escaped forms kept, counted in characters of the originals

_memo: "OrderedDict[str, str]" = OrderedDict()
_memo_chars = 0
_lock = threading.Lock()


def _escape(s: str) -> str:
    """encode_basestring(s), from the memo for long strings."""
    global _memo_chars
    if len(s) < MEMO_MIN_CHARS:
        return encode_basestring(s)
    with _lock:
        hit = _memo.get(s)
        if hit is not None:
            _memo.move_to_end(s)
            return hit
    escaped = encode_basestring(s)
    if len(s) <= MEMO_MAX_CHARS // 8:  # one huge output must not flush everything else
        with _lock:
            if s not in _memo:
                _memo[s] = escaped
                _memo_chars += len(s)
                while _memo_chars > MEMO_MAX_CHARS:
                    _memo_chars -= len(_memo.popitem(last=False)[0])
    return escaped


def _reference(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _c_dumps(escape: Callable[[str], str]) -> Callable[[Any], str]:
    """A dumps through one C encoder, for values encoded one after another on one thread (the
    encoder's circular-reference markers are its own). With `encode_basestring` itself as
    `escape` the encoder escapes in C without calling back: the faster for short strings."""
    # Arguments as json.JSONEncoder.iterencode passes them for the options above: a markers
    # dict (circular check), default=str, no indent, separators, no key sorting, no skipping
    # of keys, NaN allowed.
    encode = c_make_encoder({}, str, escape, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


def _memo_encoder() -> Callable[[Any], str] | None:
    """dumps(value) through the C encoder with the memoised escaping, or None."""
    if c_make_encoder is None or encode_basestring is None:
        return None

    def dumps(value: Any) -> str:
        return _c_dumps(_escape)(value)

    sample = [{"role": "user", "content": [{"type": "text", "text": "x\"é\n\u2028" * 100,
                                             "n": 1.5, "i": 3, "b": True, "z": None,
                                             1: float("inf"), "v": JsonNumber("1.0"),
                                             JsonNumber("2"): frozenset()}]}]
    try:
        if dumps(sample) == _reference(sample) and dumps(sample) == _reference(sample):
            return dumps
    except Exception:  # an interpreter whose encoder takes other arguments
        pass
    return None


dumps: Callable[[Any], str] = _memo_encoder() or _reference


class Batch:
    """`dumps` for many values in a row on one thread (a conversation's units), one encoder
    each way: `memo` for values holding long strings, `plain` (no memo) for the others. Both
    give the text of `dumps`; only their speed differs."""

    __slots__ = ("memo", "plain")

    def __init__(self) -> None:
        fast = dumps is not _reference
        self.memo = _c_dumps(_escape) if fast else _reference
        self.plain = _c_dumps(encode_basestring) if fast else _reference


def clear_memo() -> None:
    global _memo_chars
    with _lock:
        _memo.clear()
        _memo_chars = 0
