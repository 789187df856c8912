"""jsonfmt: faithful loads/dumps round trips of real SDK bodies, number literals, odd text."""

from __future__ import annotations

import json
import time

import pytest

from headroom_core.jsonfmt import COMPACT, JsonFormatError, JsonNumber, JsonStyle, detect_style, dumps, loads

DOC = {
    "model": "claude-sonnet-4-5-20250929",
    "max_tokens": 8192,
    "temperature": JsonNumber("1.0"),
    "top_p": JsonNumber("0.95"),
    "metadata": {"user_id": "u-42", "weights": [JsonNumber("1e5"), JsonNumber("-0.0"), JsonNumber("2.50E-3"), -0,
                                                 123456789012345678901234567890, -7]},
    "system": "Tu es un assistant. 你好，世界。 مرحبا بالعالم 🎉 — “quotes” and \\ backslash",
    "messages": [
        {"role": "user", "content": "Line one\nLine two\ttab \"quoted\" \u0000 nul \u2028 sep \x7f del"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01", "name": "grep",
                                           "input": {"pattern": "fn\\s+main", "max": 10, "ratio": JsonNumber("0.5")}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "is_error": False,
                                      "content": "src/main.rs:1:fn main() {}\nnull: null, true"}]},
    ],
    "stream": True,
    "stop_sequences": [],
    "tool_choice": None,
    "extra": {},
}


def _python_body(doc: dict, **kw: object) -> bytes:
    """What Python's json writes: JsonNumber literals spliced in the way a float repr would be."""
    marker = {}

    def walk(v: object) -> object:
        if isinstance(v, JsonNumber):
            key = f"@@num{len(marker)}@@"
            marker[key] = str.__str__(v)
            return key
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(doc), **kw)
    for key, literal in marker.items():
        text = text.replace(f'"{key}"', literal)
    return text.encode("utf-8")


BODIES = {
    # JS SDKs (JSON.stringify) and httpx >= 0.28 (Anthropic/OpenAI Python SDKs)
    "compact": _python_body(DOC, ensure_ascii=False, separators=(",", ":")),
    # json.dumps() defaults: older httpx, requests, hand-written scripts
    "python-default": _python_body(DOC),
    "compact-ascii": _python_body(DOC, separators=(",", ":")),
    "spaced-utf8": _python_body(DOC, ensure_ascii=False),
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_round_trip_is_byte_identical(name: str) -> None:
    raw = BODIES[name]
    assert dumps(loads(raw), detect_style(raw)) == raw


@pytest.mark.parametrize("name,expected", [
    ("compact", JsonStyle(",", ":", False)),
    ("python-default", JsonStyle(", ", ": ", True)),
    ("compact-ascii", JsonStyle(",", ":", True)),
    ("spaced-utf8", JsonStyle(", ", ": ", False)),
])
def test_detect_style(name: str, expected: JsonStyle) -> None:
    assert detect_style(BODIES[name]) == expected


@pytest.mark.parametrize("raw,expected", [
    (b'{"a":1}', JsonStyle(",", ":", False)),
    (b'{"a": 1}', JsonStyle(", ", ": ", True)),  # Python's default, nothing to tell ascii apart
    (b'{"a" : 1 , "b" : 2}', JsonStyle(" , ", " : ", False)),
    (b'{\n  "a": 1,\n  "b": [1,\n 2]\n}', JsonStyle(",", ": ", False)),  # indented: written flat
    (b'{"k,:": "v, : x","b":2}', JsonStyle(",", ": ", False)),  # separators inside strings ignored
    (b'{"esc\\"aped":"x\\u00e9"}', JsonStyle(",", ":", True)),
    (b'{"lit":"\\\\u00e9"}', JsonStyle(",", ":", False)),  # an escaped backslash, then "u00e9"
    (b'{"lit":"\\\\\\u00e9"}', JsonStyle(",", ":", True)),  # escaped backslash, then an escape
    (b'[]', JsonStyle(",", ":", False)),
])
def test_detect_style_edges(raw: bytes, expected: JsonStyle) -> None:
    assert detect_style(raw) == expected


@pytest.mark.parametrize("literal", ["1.0", "1e5", "1E+5", "-0.0", "-0", "0.1", "2.50", "1.5e-300",
                                     "123456789012345678901234567890.0", "3.141592653589793238462643383279"])
def test_number_literals_survive(literal: str) -> None:
    doc = loads(f'{{"n":{literal},"l":[{literal}]}}'.encode())
    assert isinstance(doc["n"], JsonNumber)
    assert dumps(doc) == f'{{"n":{literal},"l":[{literal}]}}'.encode()
    assert float(doc["n"]) == float(literal)


def test_integers_stay_int() -> None:
    doc = loads(b'{"a":0,"b":-7,"c":12345678901234567890123456789}')
    assert doc == {"a": 0, "b": -7, "c": 12345678901234567890123456789}
    assert all(type(v) is int for v in doc.values())


@pytest.mark.parametrize("raw", [
    b'{"a":NaN}', b'{"a":Infinity}', b'[-Infinity]', b'{"a":1', b"", b"   ", b"\xff\xfe{}",
    b'{"a":"\xc3"}', b"\xef\xbb\xbf{}", b"{'a':1}", b'{"a":1}x', ("9" * 5000).encode(),
])
def test_bad_input_raises_json_format_error(raw: bytes) -> None:
    with pytest.raises(JsonFormatError):
        loads(raw)
    assert issubclass(JsonFormatError, ValueError)


def test_loads_accepts_str() -> None:
    assert loads('{"é": [1.0]}') == {"é": [JsonNumber("1.0")]}


@pytest.mark.parametrize("raw", [
    '{"t":"\\ud800"}', '{"t":"a\\udfffb"}', '{"t":"\\udc00\\ud800"}',  # lone / reversed surrogates
    '{"t":"\\ud83c\\udf89"}',  # a pair: becomes one code point, written raw in UTF-8 style
])
def test_surrogate_escapes(raw: str) -> None:
    doc = loads(raw.encode())
    out = dumps(doc)
    assert loads(out) == doc
    json.loads(out)  # still valid JSON to any reader
    out.decode("utf-8")  # and valid UTF-8
    assert dumps(doc, JsonStyle(",", ":", True)) == raw.encode()


def test_non_ascii_written_as_is_in_utf8_style() -> None:
    doc = {"t": "日本語 🎉 עברית"}
    assert dumps(doc) == '{"t":"日本語 🎉 עברית"}'.encode()
    assert dumps(doc, JsonStyle(",", ":", True)) == json.dumps(doc, separators=(",", ":")).encode()


def test_key_order_kept_and_modifications_written() -> None:
    raw = b'{"z":1,"a":{"y":2.0,"b":[true,false,null]},"m":"x"}'
    doc = loads(raw)
    doc["a"]["b"].append("new")
    doc["n"] = 0.25
    assert dumps(doc) == b'{"z":1,"a":{"y":2.0,"b":[true,false,null,"new"]},"m":"x","n":0.25}'


def test_dumps_rejects_what_json_cannot_hold() -> None:
    for bad in (float("nan"), float("inf"), {1j: 1}, object(), {"s": {1, 2}}):
        with pytest.raises((TypeError, ValueError)):
            dumps(bad)


def test_dumps_accepts_subclasses_and_tuples() -> None:
    from collections import OrderedDict

    class S(str):
        pass

    assert dumps(OrderedDict(a=(1, S("x")), b=True)) == b'{"a":[1,"x"],"b":true}'
    assert dumps({1: "int key", None: 0}) == b'{"1":"int key","null":0}'


def test_ten_megabyte_body_timing() -> None:
    """Measured, printed, not asserted (CPU shared): should be well under a second."""
    block = ("2024-01-01 INFO request handled in 12ms path=/api/v1/items?id=42 ünïcödé ✓\n" * 1300)
    messages = []
    for i in range(100):
        messages.append({"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{i}", "name": "bash", "input": {"command": "cat log", "timeout": 1.5}}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": [{"type": "text", "text": block}]}]})
    raw = json.dumps({"model": "m", "max_tokens": 1, "messages": messages}, ensure_ascii=False,
                     separators=(",", ":")).encode()
    numeric = json.dumps({"embedding": [i / 7 for i in range(400_000)]}).encode()
    for label, body in (("tool-results", raw), ("numbers", numeric)):
        t0 = time.perf_counter()
        doc = loads(body)
        t1 = time.perf_counter()
        style = detect_style(body)
        t2 = time.perf_counter()
        out = dumps(doc, style)
        t3 = time.perf_counter()
        print(f"\n{label}: {len(body) / 1e6:.1f} MB  loads {1e3 * (t1 - t0):.0f} ms  "
              f"detect_style {1e3 * (t2 - t1):.2f} ms  dumps {1e3 * (t3 - t2):.0f} ms")
        assert out == body
