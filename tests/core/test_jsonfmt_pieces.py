"""jsonfmt on large bodies: read and written piece by piece, with the results of whole calls."""

from __future__ import annotations

import json
import random

import pytest

from headroom_core import jsonfmt
from headroom_core.jsonfmt import COMPACT, PYTHON_DEFAULT, JsonFormatError, JsonNumber, dumps, loads

PIECES = ['"', "\\", "\n", "\t", "\x01", "é", "😀", "\ud83d", "\ude00", "\u2028", "a", "bc", " ", "{", "]",
          "\\n", "\\u00e9", "\\ud83d\\ude00", "//", "0"]


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every body 'large' and every piece a few characters long."""
    monkeypatch.setattr(jsonfmt, "BIG_TEXT", 16)
    monkeypatch.setattr(jsonfmt, "PIECE", 7)
    monkeypatch.setattr(jsonfmt, "_TRY_WHOLE", (8, 32))
    monkeypatch.setattr(jsonfmt, "_SHORT_STRING", 5)


def random_doc(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(9 if depth < 4 else 5)
    if kind == 0:
        return "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 60)))
    if kind == 1:
        return rng.choice([JsonNumber("1.0"), JsonNumber("-0.0"), JsonNumber("2.5E-3"), JsonNumber("-0"), 7, -12,
                           10**30])
    if kind == 2:
        return rng.choice([True, False, None])
    if kind in (3, 4):
        return "x" * rng.randrange(0, 40)
    if kind in (5, 6):
        return [random_doc(rng, depth + 1) for _ in range(rng.randrange(0, 6))]
    return {"".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 6))): random_doc(rng, depth + 1)
            for _ in range(rng.randrange(0, 6))}


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("style", [COMPACT, PYTHON_DEFAULT])
def test_piecewise_read_and_write_equal_whole(tiny, seed, style):
    rng = random.Random(seed)
    doc = {"model": "m", "messages": [random_doc(rng) for _ in range(4)], "n": JsonNumber("1e5")}
    body = dumps(doc, style)
    whole = json.loads(body, parse_float=JsonNumber, parse_int=lambda s: JsonNumber(s) if s == "-0" else int(s))
    parsed = loads(body)
    assert parsed == whole
    assert [type(x) for x in _leaves(parsed)] == [type(x) for x in _leaves(whole)]
    with pytest.MonkeyPatch.context() as m:  # written whole, by the C encoder in one call
        m.setattr(jsonfmt, "BIG_TEXT", 1 << 30)
        assert dumps(doc, style) == body


def _leaves(value: object) -> list:
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in [k, *_leaves(v)]]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


@pytest.mark.parametrize("body", [b'{"a": "unterminated', b'{"a": [1, 2', b'{"a": NaN}', b'{"a": 1} x', b'{"a" 1}',
                                  b'{"a": "\x01 control"}', b'[1, 2,]', b'{"a": "\\ud800 lone"}', b'{"a": "bad \\x"}',
                                  b'\xff\xfe', b'{"a": "' + b"\\" * 9 + b'"}', b'"' + b"ab\\\\" * 10 + b'"',
                                  b'{"a": "' + b"x" * 40, b'{"a": "' + b"\\u00e9" * 20 + b'"}', b'["' + b"y" * 30 + b'\\"]'])
def test_piecewise_read_fails_where_the_whole_read_fails(tiny, body):
    try:
        expected = jsonfmt._DECODER.decode(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        with pytest.raises(JsonFormatError):
            loads(body)
        return
    assert loads(body) == expected


def test_a_10_mb_output_reads_back_whole():
    text = "".join(f"2025-03-14T09:00:{i % 60:02d}Z INFO req {i} \"ok\" é\n" for i in range(200_000))
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": text}]}]}).encode()
    assert len(body) > jsonfmt.BIG_TEXT
    doc = loads(body)
    assert doc["messages"][0]["content"][0]["content"] == text
    assert dumps(doc, jsonfmt.detect_style(body)) == body


def test_utf8_text_and_accounting_read_large_bodies_piece_by_piece():
    from headroom_core.accounting import request_facts
    from headroom_core.tokens import count_request
    from headroom_core.wire.common import Endpoint

    text = "é日😀 line\n" * 150_000
    data = text.encode()
    assert len(data) > jsonfmt.BIG_TEXT and jsonfmt.utf8_text(data) == text
    with pytest.raises(UnicodeDecodeError):
        jsonfmt.utf8_text(data[:-1] + b"\xff")
    body = json.dumps({"model": "gpt-4o", "stream": True, "messages": [{"role": "tool", "content": text}]},
                      ensure_ascii=False).encode()
    facts = request_facts(body, Endpoint.OPENAI_CHAT)
    assert (facts.model, facts.stream) == ("gpt-4o", True)
    assert facts.tokens == count_request(json.loads(body), Endpoint.OPENAI_CHAT)
