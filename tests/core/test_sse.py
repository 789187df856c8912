"""sse: every split point of recorded provider streams, the WHATWG edge cases, the writer."""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path

import pytest

from headroom_core.sse import SSEEvent, SSEParser, encode_event

DATA = Path(__file__).parent / "data"
STREAMS = {p.stem: p.read_bytes() for p in sorted(DATA.glob("*.sse"))}
VARIANTS = {
    "lf": lambda b: b,
    "crlf": lambda b: b.replace(b"\n", b"\r\n"),
    "cr": lambda b: b.replace(b"\n", b"\r"),
    "bom-crlf": lambda b: b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"),
    # cut before the last blank line: close() must hand over the last event
    "lf-unterminated": lambda b: b[:-2],
    "cr-unterminated": lambda b: b.replace(b"\n", b"\r")[:-1],
}


def reference_events(stream: bytes) -> list[tuple]:
    """A direct reading of the spec over the whole stream at once, for comparison."""
    text = stream.decode("utf-8", "replace")
    text = text[1:] if text.startswith("\ufeff") else text
    events, data, event, id_ = [], [], None, None
    for line in re.split(r"\r\n|\r|\n", text)[:-1]:  # the last piece has no line end
        if line == "":
            if data:
                events.append((event, "\n".join(data), id_))
            data, event, id_ = [], None, None
        elif line.startswith(":"):
            continue
        else:
            field, colon, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field == "event":
                event = value
            elif field == "id" and "\0" not in value:
                id_ = value
    return events


def parse(chunks: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    out: list[SSEEvent] = []
    for chunk in chunks:
        out.extend(parser.feed(chunk))
    out.extend(parser.close())
    return out


def summary(events: list[SSEEvent]) -> list[tuple]:
    return [(e.event, e.data, e.id) for e in events]


@pytest.fixture(params=sorted(STREAMS))
def stream_name(request: pytest.FixtureRequest) -> str:
    return request.param


def test_recorded_streams_are_what_they_claim() -> None:
    events = parse([STREAMS["anthropic_stream"]])
    kinds = [e.event for e in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "ping" in kinds
    deltas = {json.loads(e.data)["delta"]["type"] for e in events if e.event == "content_block_delta"}
    assert deltas == {"text_delta", "thinking_delta", "signature_delta", "input_json_delta", "citations_delta"}
    text = "".join(json.loads(e.data)["delta"].get("text", "") for e in events if e.event == "content_block_delta")
    assert "مرحبا — שלום — 你好!" in text and "🌫️" in text
    assert parse([STREAMS["anthropic_error_stream"]])[-1].event == "error"
    chat = parse([STREAMS["openai_chat_stream"]])
    assert chat[-1].data == "[DONE]" and all(e.event is None for e in chat)
    assert json.loads(chat[-2].data)["choices"] == []
    responses = parse([STREAMS["openai_responses_stream"]])
    assert responses[0].event == "response.created" and responses[-1].event == "response.completed"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_two_way_split(stream_name: str, variant: str) -> None:
    stream = VARIANTS[variant](STREAMS[stream_name])
    whole = parse([stream])
    terminated = stream if stream.endswith((b"\n\n", b"\r\r")) else stream + b"\n\n"
    assert summary(whole) == reference_events(terminated)
    assert b"".join(e.raw for e in whole) == stream
    for i in range(len(stream) + 1):
        split = parse([stream[:i], stream[i:]])
        assert split == whole, f"split at byte {i}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_random_multi_splits_and_single_bytes(stream_name: str, variant: str) -> None:
    stream = VARIANTS[variant](STREAMS[stream_name])
    whole = parse([stream])
    rng = random.Random(f"{stream_name}-{variant}")
    for _ in range(150):
        cuts = sorted(rng.sample(range(1, len(stream)), rng.randint(2, 40)))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
        assert parse(chunks) == whole, cuts
    assert parse([stream[i:i + 1] for i in range(len(stream))]) == whole


def test_events_arrive_as_soon_as_their_blank_line_does() -> None:
    stream = STREAMS["anthropic_stream"]
    parser = SSEParser()
    first_end = stream.index(b"\n\n") + 2
    assert parser.feed(stream[:first_end - 1]) == []
    (event,) = parser.feed(stream[first_end - 1:first_end])
    assert event.event == "message_start" and event.raw == stream[:first_end]


@pytest.mark.parametrize("stream,expected", [
    (b"data: a\ndata:b\ndata:  c\n\n", [(None, "a\nb\n c", None)]),  # one space stripped, only one
    (b"data\n\n", [(None, "", None)]),  # a field without a colon has an empty value
    (b"data:\ndata:\n\n", [(None, "\n", None)]),
    (b": comment\n:\n\ndata: x\n\n", [(None, "x", None)]),
    (b"event: ping\n\ndata: y\n\n", [(None, "y", None)]),  # event without data is dropped, type reset
    (b"event: a\nevent: b\nid: 7\nfoo: bar\ndata: z\n\n", [("b", "z", "7")]),
    (b"id: 1\0\ndata: x\n\n", [(None, "x", None)]),  # an id with NUL is ignored
    (b"event:no-space\ndata:{}\r\n\r\n", [("no-space", "{}", None)]),
    (b"data: \xff\xfe bad\n\n", [(None, "\ufffd\ufffd bad", None)]),  # bad UTF-8: replacement chars
    (b"\xef\xbb\xbfdata: bom\n\n", [(None, "bom", None)]),
    (b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", []),  # only one BOM is skipped: a field named "\ufeffdata"
    (b"data: a\r\rdata: b\n\r\n", [(None, "a", None), (None, "b", None)]),
    (b"data: x\n", []),  # no blank line: nothing yet (close() sends it, see below)
])
def test_spec_edge_cases(stream: bytes, expected: list[tuple]) -> None:
    parser = SSEParser()
    assert summary(parser.feed(stream)) == expected
    assert reference_events(stream) == expected


def test_retry_and_sticky_last_event_id() -> None:
    parser = SSEParser()
    events = parser.feed(b"retry: 3000\nid: a\ndata: 1\n\nretry: x1\ndata: 2\n\n")
    assert [(e.retry, e.id) for e in events] == [(3000, "a"), (None, None)]
    assert parser.last_event_id == "a"


def test_close_sends_an_unterminated_event_and_resets() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: [DONE]") == []
    (event,) = parser.close()
    assert event == SSEEvent(None, "[DONE]", raw=b"data: [DONE]")
    assert parser.close() == []
    parser.feed(b"data: partial\ndata: more\n")
    assert [e.data for e in parser.close()] == ["partial\nmore"]
    parser.feed(b"data: cr\r")  # a CR held back at the end of the stream still ends its line
    assert [(e.data, e.raw) for e in parser.close()] == [("cr", b"data: cr\r")]
    parser.feed(b": just a comment\n")
    assert parser.close() == []
    parser.feed(b"\xef\xbb")
    assert parser.close() == []


def test_held_cr_then_more_bytes_then_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"data: b") == []  # no line end: kept aside, joined later
    assert [(e.data, e.raw) for e in parser.close()] == [("a\nb", b"data: a\rdata: b")]


def test_held_cr_completes_with_lf_in_next_chunk() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r\n\r") == []  # the CR might be the first half of a CRLF
    (event,) = parser.feed(b"\n")
    assert event.raw == b"data: x\r\n\r\n"


def test_split_code_point() -> None:
    stream = "data: 🎉日本\n\n".encode()
    for i in range(len(stream) + 1):
        assert [e.data for e in parse([stream[:i], stream[i:]])] == ["🎉日本"]


@pytest.mark.parametrize("event,data,id_,expected", [
    ("ping", '{"type": "ping"}', None, b'event: ping\ndata: {"type": "ping"}\n\n'),
    (None, "[DONE]", None, b"data: [DONE]\n\n"),
    ("e", "two\nlines\r\nand\rthree", "9", b"event: e\nid: 9\ndata: two\ndata: lines\ndata: and\ndata: three\n\n"),
    (None, "", None, b"data: \n\n"),
    ("déjà", "vu ✓", None, "event: déjà\ndata: vu ✓\n\n".encode()),
])
def test_encode_event_round_trips(event: str | None, data: str, id_: str | None, expected: bytes) -> None:
    raw = encode_event(event, data, id_)
    assert raw == expected
    (parsed,) = SSEParser().feed(raw)
    assert (parsed.event, parsed.id, parsed.raw) == (event, id_, raw)
    assert parsed.data == data.replace("\r\n", "\n").replace("\r", "\n")


def test_encode_event_rejects_line_breaks_in_names() -> None:
    with pytest.raises(ValueError):
        encode_event("a\nb", "x")
    with pytest.raises(ValueError):
        encode_event("a", "x", id="1\r2")


def test_recorded_events_re_encode_to_the_same_bytes(stream_name: str) -> None:
    stream = STREAMS[stream_name]
    events = parse([stream])
    assert b"".join(encode_event(e.event, e.data, e.id) for e in events if not e.raw.startswith(b":")) \
        == b"".join(e.raw for e in events if not e.raw.startswith(b":"))


def test_sixteen_kilobyte_chunk_timing() -> None:
    """Measured and printed, not asserted (shared CPU): should be well under 1 ms."""
    for name in ("anthropic_stream", "openai_chat_stream"):
        stream = STREAMS[name] * 6
        for variant in ("lf", "crlf"):
            data = VARIANTS[variant](stream)[:16384]
            runs = []
            for _ in range(50):
                parser = SSEParser()
                t0 = time.perf_counter()
                events = parser.feed(data)
                runs.append(time.perf_counter() - t0)
            print(f"\n{name} {variant}: 16 KB, {len(events)} events, median "
                  f"{1e6 * sorted(runs)[len(runs) // 2]:.0f} us")
            assert len(events) > 20
