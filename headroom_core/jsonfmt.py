"""Faithful JSON for request bodies we rewrite (DESIGN.md rule 1: byte fidelity).

`loads` keeps what a plain `json.loads` would lose: a float or exponent literal stays exactly as
written (`JsonNumber`), key order is kept (dicts are ordered). `dumps` writes a document back in
the body's own style (`detect_style`): its separators, and non-ASCII either as is or as \\u
escapes. So a body that went through loads/dumps untouched comes out byte-identical whenever it
was written by a common serializer (JSON.stringify, Python's json, httpx, serde_json, Go).

Not kept: whitespace other than one separator style (pretty-printed bodies come back with their
separators but no indentation), the spelling of escapes inside strings (`\\/`, upper-case hex),
and all but the last of duplicate keys.

Bodies over BIG_TEXT characters (a 10 MB tool output) are read and written in pieces of at
most PIECE characters per C-level call (`_Reader`, `_write_string`): the json module's scanner
would otherwise hold the GIL for the whole body (~30-80 ms), during which the proxy's event
loop, which shares it with the optimiser thread, cannot serve any other request. The results
are the same as the whole-body calls (tests/core/test_jsonfmt_pieces.py).
"""

from __future__ import annotations

import codecs
import json
import re
from dataclasses import dataclass
from json.decoder import scanstring
from json.encoder import encode_basestring, encode_basestring_ascii  # the C versions when built
from typing import Any, Callable

__all__ = ["JsonNumber", "JsonFormatError", "JsonStyle", "COMPACT", "PYTHON_DEFAULT", "detect_style", "loads",
           "dumps"]


class JsonFormatError(ValueError):
    """The bytes are not a JSON document we can round-trip (bad UTF-8, bad JSON, NaN, ...)."""


class JsonNumber(str):
    """A JSON number literal kept exactly as written (`1.0`, `1e5`, `-0.0`, `-0`).

    It is a str so the text survives untouched; `float(n)` gives its value. Code that tests
    `isinstance(x, str)` on parsed documents sees numbers too: use `type(x) is str` for strings.
    """

    __slots__ = ()

    def __float__(self) -> float:
        return float(str.__str__(self))

    def __repr__(self) -> str:
        return f"JsonNumber({str.__str__(self)!r})"


@dataclass(frozen=True)
class JsonStyle:
    """How a serializer wrote a body: what follows a value, what follows a key."""

    item_sep: str
    key_sep: str
    ensure_ascii: bool


COMPACT = JsonStyle(",", ":", False)
PYTHON_DEFAULT = JsonStyle(", ", ": ", True)  # json.dumps() with no arguments

# A string literal (unrolled loop: fast on megabyte strings) or a structural separator with the
# whitespace around it.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|([ \t\r\n]*)([,:])([ \t\r\n]*)', re.S)
# A \u escape of a non-ASCII code point (a literal prefix, so the scan runs at C speed).
_NON_ASCII_ESCAPE = re.compile(
    rb"\\u(?:00[89a-fA-F][0-9a-fA-F]|0[1-9a-fA-F][0-9a-fA-F]{2}|[1-9a-fA-F][0-9a-fA-F]{3})")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SNIFF_TOKENS = 64  # separators looked at before giving up on finding both kinds
BIG_TEXT = 1 << 20  # longer bodies and strings are read and written piece by piece
PIECE = 1 << 18  # characters (or bytes) one C-level call may go through


def detect_style(raw: bytes) -> JsonStyle:
    """Sniff the separators after the first key and first value, and how non-ASCII was written."""
    data = bytes(raw) if not isinstance(raw, str) else raw.encode("utf-8", "surrogatepass")
    item_sep = key_sep = None
    for n, match in enumerate(_TOKEN.finditer(data)):
        sep = match.group(2)
        if sep == b":" and key_sep is None:
            key_sep = (match.group(1) + sep + match.group(3)).decode("ascii")
        elif sep == b"," and item_sep is None:
            item_sep = (match.group(1) + sep + match.group(3)).decode("ascii")
        if (item_sep is not None and key_sep is not None) or n >= _SNIFF_TOKENS:
            break
    if item_sep is not None and ("\n" in item_sep or "\r" in item_sep):
        item_sep = ","  # indented output: indentation depends on depth, write it compact
    if key_sep is not None and ("\n" in key_sep or "\r" in key_sep):
        key_sep = ":"
    if key_sep is None:
        key_sep = ":"
    if item_sep is None:  # a single member: guess the partner of the key separator
        item_sep = ", " if key_sep == ": " else ","
    if not data.isascii():
        ensure_ascii = False
    elif _has_non_ascii_escape(data):
        ensure_ascii = True
    else:
        # No evidence either way: Python's default style implies ensure_ascii, others do not.
        ensure_ascii = item_sep == ", " and key_sep == ": "
    return JsonStyle(item_sep, key_sep, ensure_ascii)


def _has_non_ascii_escape(data: bytes) -> bool:
    for window in range(0, len(data), PIECE):  # an escape is 6 bytes: windows overlap by 5
        for match in _NON_ASCII_ESCAPE.finditer(data, window, min(len(data), window + PIECE + 5)):
            if match.start() >= window + PIECE:
                break
            before = data[max(0, match.start() - 64):match.start()]
            if (len(before) - len(before.rstrip(b"\\"))) % 2 == 0:  # not "\\u00e9": a backslash, then u00e9
                return True
    return False


def _parse_int(literal: str) -> int | JsonNumber:
    # "-0" would come back as "0": keep it as written.
    return JsonNumber(literal) if literal == "-0" else int(literal)


def _reject_constant(name: str) -> Any:
    raise JsonFormatError(f"{name} is not valid JSON")


_DECODER = json.JSONDecoder(parse_float=JsonNumber, parse_int=_parse_int,
                            parse_constant=_reject_constant)


def loads(raw: bytes | str) -> Any:
    """Parse a JSON body strictly: UTF-8 only, no NaN/Infinity; numbers keep their literal."""
    if isinstance(raw, (bytes, bytearray, memoryview)):
        try:
            text = _utf8(bytes(raw))
        except UnicodeDecodeError as e:
            raise JsonFormatError(f"body is not UTF-8: {e}") from None
    else:
        text = raw
    try:
        return decode_text(text, _DECODER)
    except JsonFormatError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, int digit limit, deep nesting
        raise JsonFormatError(str(e)) from None


def decode_text(text: str, decoder: json.JSONDecoder | None = None) -> Any:
    """`decoder.decode(text)` (default: `json.loads`'s), piece by piece for a large text;
    raises what the decoder raises."""
    decoder = decoder or _PLAIN
    if len(text) <= BIG_TEXT:
        return decoder.decode(text)
    return _Reader(text, decoder.scan_once).document()


def utf8_text(data: bytes) -> str:
    """`data.decode("utf-8")`, a piece at a time for a large body."""
    return _utf8(data)


def _utf8(data: bytes) -> str:
    if len(data) <= BIG_TEXT:
        return data.decode("utf-8")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    parts = [decoder.decode(data[i:i + PIECE]) for i in range(0, len(data), PIECE)]
    parts.append(decoder.decode(b"", True))
    return "".join(parts)


_WS = re.compile(r"[ \t\n\r]*")
_STRING_BODY = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.S)  # up to the closing quote
_TRY_WHOLE = (1 << 10, 1 << 16)  # a container is first tried whole within windows this long
_SHORT_STRING = 1 << 12  # a string whose end is found this soon is decoded in one call
_PLAIN = json.JSONDecoder()


class _Reader:
    """`_DECODER.decode(text)` for a large text, value by value.

    A container that fits in a _TRY_WHOLE window is parsed by the C scanner in one call;
    a larger one is walked member by member here. A string up to PIECE long is one call of the
    C `scanstring`; a longer one is decoded in pieces cut where no escape sequence is split.
    """

    def __init__(self, text: str, scan: Callable[[str, int], tuple[Any, int]]) -> None:
        self.text = text
        self.scan = scan

    def document(self) -> Any:
        text = self.text
        value, end = self.value(_WS.match(text, 0).end())
        end = _WS.match(text, end).end()
        if end != len(text):
            raise json.JSONDecodeError("Extra data", text, end)
        return value

    def value(self, i: int) -> tuple[Any, int]:
        text = self.text
        if i >= len(text):
            raise json.JSONDecodeError("Expecting value", text, i)
        c = text[i]
        if c == '"':
            return self.string(i)
        if c == "{" or c == "[":
            for window in _TRY_WHOLE:
                if len(text) - i <= window:
                    return self._scan(i)
                try:
                    value, end = self.scan(text[i:i + window], 0)
                except (StopIteration, ValueError, RecursionError):
                    continue  # longer than the window (or invalid: the walk will say where)
                return value, i + end
            return self.object(i) if c == "{" else self.array(i)
        return self._scan(i)

    def _scan(self, i: int) -> tuple[Any, int]:
        try:
            return self.scan(self.text, i)
        except StopIteration as e:
            raise json.JSONDecodeError("Expecting value", self.text, e.value) from None

    def object(self, i: int) -> tuple[dict, int]:
        text, ws = self.text, _WS.match
        out: dict = {}
        i = ws(text, i + 1).end()
        if text[i:i + 1] == "}":
            return out, i + 1
        while True:
            if text[i:i + 1] != '"':
                raise json.JSONDecodeError("Expecting property name enclosed in double quotes", text, i)
            key, i = self.string(i)
            i = ws(text, i).end()
            if text[i:i + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, i)
            out[key], i = self.value(ws(text, i + 1).end())
            i = ws(text, i).end()
            c = text[i:i + 1]
            if c == "}":
                return out, i + 1
            if c != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
            i = ws(text, i + 1).end()

    def array(self, i: int) -> tuple[list, int]:
        text, ws = self.text, _WS.match
        out: list = []
        i = ws(text, i + 1).end()
        if text[i:i + 1] == "]":
            return out, i + 1
        while True:
            item, i = self.value(i)
            out.append(item)
            i = ws(text, i).end()
            c = text[i:i + 1]
            if c == "]":
                return out, i + 1
            if c != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, i)
            i = ws(text, i + 1).end()

    def string(self, i: int) -> tuple[str, int]:
        """The string literal at `i` (a quote) and the index after it."""
        text, n = self.text, len(self.text)
        probe = min(n, i + 1 + _SHORT_STRING)
        end = _STRING_BODY.match(text, i + 1, probe).end()
        if end < probe and not (end == probe - 1 and text[end] == "\\") or probe == n:
            return scanstring(text, i + 1, True)  # ends within the probe (or it is malformed)
        # A long string: decoded a piece at a time; each piece gets a closing quote of its own,
        # and the piece holding the real one stops the C scanner there.
        parts = []
        a = i + 1
        while True:
            b = _string_cut(text, a, n)
            piece = text[a:b] + '"'
            value, end = scanstring(piece, 0, True)
            parts.append(value)
            if end < len(piece):  # the real closing quote
                return "".join(parts), a + end
            if b >= n:
                raise json.JSONDecodeError("Unterminated string starting at", text, i)
            a = b


def _string_cut(text: str, a: int, end: int) -> int:
    """Where to end a piece of escaped string text starting at `a` (before `end`): about PIECE
    on, at a place with no backslash in the 6 characters before it, so no escape (at most 6
    long, and a surrogate pair's second half starts with one) is cut. Without such a place
    nearby, the rest is one piece."""
    cut = a + PIECE
    if cut >= end:
        return end
    floor = max(a + 1, cut - 4096)
    while cut > floor:
        slash = text.rfind("\\", max(a, cut - 6), cut)
        if slash == -1:
            return cut
        cut = slash
    return end


def _writer(encode_str: Callable[[str], str], item_sep: str, key_sep: str) -> Callable[[Any], str]:
    float_repr = float.__repr__
    int_repr = int.__repr__
    literal = str.__str__

    def write(value: Any) -> str:
        kind = type(value)
        if kind is str:
            return encode_str(value) if len(value) <= BIG_TEXT else _write_string(encode_str, value)
        if kind is dict:
            return "{" + item_sep.join([encode_str(k if type(k) is str else _key(k)) + key_sep + write(v)
                                        for k, v in value.items()]) + "}"
        if kind is list or kind is tuple:
            return "[" + item_sep.join([write(v) for v in value]) + "]"
        if kind is JsonNumber:
            return literal(value)
        if value is None:
            return "null"
        if value is True:
            return "true"
        if value is False:
            return "false"
        if kind is int:
            return int_repr(value)
        if kind is float:
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError(f"{value!r} cannot be written as JSON")
            return float_repr(value)
        return write(_coerce(value))

    return write


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if key is None or isinstance(key, (bool, int, float)):
        return json.dumps(key)  # what json.dumps does with such keys
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")


def _coerce(value: Any) -> Any:
    """Subclasses of the JSON types, as json.dumps accepts them."""
    if isinstance(value, JsonNumber):
        return JsonNumber(str.__str__(value))
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _write_string(encode_str: Callable[[str], str], value: str) -> str:
    """`encode_str(value)` for a long string, escaped a piece at a time (escaping works on single
    code points, so any cut gives the same text)."""
    return '"' + "".join([encode_str(value[i:i + PIECE])[1:-1] for i in range(0, len(value), PIECE)]) + '"'


_WRITERS: dict[JsonStyle, Callable[[Any], str]] = {}


def _escape_surrogate(match: re.Match[str]) -> str:
    return "\\u%04x" % ord(match.group())


def dumps(doc: Any, style: JsonStyle = COMPACT) -> bytes:
    """Write `doc` as UTF-8 JSON in `style`; JsonNumber literals verbatim, key order kept."""
    write = _WRITERS.get(style)
    if write is None:
        encode_str = encode_basestring_ascii if style.ensure_ascii else encode_basestring
        write = _WRITERS[style] = _writer(encode_str, style.item_sep, style.key_sep)
    text = write(doc)
    if style.ensure_ascii:
        return text.encode("ascii") if len(text) <= BIG_TEXT else \
            b"".join([text[i:i + PIECE].encode("ascii") for i in range(0, len(text), PIECE)])
    try:
        if len(text) <= BIG_TEXT:
            return text.encode("utf-8")
        return b"".join([text[i:i + PIECE].encode("utf-8") for i in range(0, len(text), PIECE)])
    except UnicodeEncodeError:
        # Lone surrogates (from "\ud800" escapes) have no UTF-8 form: escape them as they came.
        return _SURROGATE.sub(_escape_surrogate, text).encode("utf-8")
