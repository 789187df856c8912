"""usage: Usage arithmetic, usage from JSON bodies, and the stream tap at every split point."""

from __future__ import annotations

import gzip
import json
import random
import time
from pathlib import Path

import brotli
import pytest
import zstandard

from headroom_core.sse import encode_event
from headroom_core.usage import StreamTap, Usage, usage_from_body
from headroom_core.wire.common import Endpoint

DATA = Path(__file__).parent / "data"


def stream(name: str) -> bytes:
    return (DATA / f"{name}.sse").read_bytes()


# What each recorded stream must yield: (endpoint, usage, model, stop_reason, complete, error?)
EXPECTED = {
    "anthropic_stream": (Endpoint.ANTHROPIC_MESSAGES, Usage(2095, 312, 18432, 1024),
                         "claude-sonnet-4-5-20250929", "tool_use", True, False),
    "anthropic_error_stream": (Endpoint.ANTHROPIC_MESSAGES, Usage(512, 1, 4096, 0),
                               "claude-opus-4-1-20250805", None, False, True),
    "openai_chat_stream": (Endpoint.OPENAI_CHAT, Usage(1318 - 1152, 84, 1152, 0),
                           "gpt-4o-2024-08-06", "tool_calls", True, False),
    "openai_responses_stream": (Endpoint.OPENAI_RESPONSES, Usage(1536 - 1280, 402, 1280, 0),
                                "o4-mini-2025-04-16", "completed", True, False),
}
ENCODINGS = {"identity": lambda b: b, "gzip": gzip.compress, "br": brotli.compress,
             "zstd": zstandard.ZstdCompressor().compress}


def tap_all(endpoint: Endpoint, chunks: list[bytes], encoding: str | None = None) -> StreamTap:
    tap = StreamTap(endpoint, encoding)
    for chunk in chunks:
        tap.feed(chunk)
    tap.feed(b"")  # mitmproxy's end-of-stream chunk: nothing to feed
    tap.finish()
    return tap


def facts(tap: StreamTap) -> tuple:
    return (tap.usage, tap.model, tap.stop_reason, tap.complete, tap.stream_error is not None,
            tap.tap_error, tap.events)


def test_usage_arithmetic() -> None:
    a, b = Usage(10, 2, 100, 5), Usage(1, 1, 1, 1)
    assert a + b == Usage(11, 3, 101, 6)
    assert sum([a, b]) == a + b and sum([], Usage()) == Usage()
    assert a.total_input == 115
    assert a.to_dict() == {"input_tokens": 10, "output_tokens": 2, "cache_read_tokens": 100, "cache_write_tokens": 5}
    with pytest.raises(TypeError):
        a + 1  # noqa: B018


@pytest.mark.parametrize("endpoint,body,expected", [
    (Endpoint.ANTHROPIC_MESSAGES, {"type": "message", "usage": {
        "input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 4000,
        "output_tokens": 77, "service_tier": "standard"}}, Usage(12, 77, 4000, 300)),
    (Endpoint.ANTHROPIC_MESSAGES, {"usage": {"input_tokens": 5, "output_tokens": 1,
                                             "cache_read_input_tokens": None}}, Usage(5, 1, 0, 0)),
    (Endpoint.OPENAI_CHAT, {"object": "chat.completion", "usage": {
        "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920}}}, Usage(86, 300, 1920, 0)),
    (Endpoint.OPENAI_CHAT, {"usage": {"prompt_tokens": 9, "completion_tokens": 3}}, Usage(9, 3, 0, 0)),
    (Endpoint.OPENAI_RESPONSES, {"object": "response", "usage": {
        "input_tokens": 328, "input_tokens_details": {"cached_tokens": 256}, "output_tokens": 52,
        "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 380}}, Usage(72, 52, 256, 0)),
    (Endpoint.OPENAI_OTHER, {"object": "list", "usage": {"prompt_tokens": 8, "total_tokens": 8}}, Usage(8, 0, 0, 0)),
    (Endpoint.OPENAI_CHAT, {"usage": {"prompt_tokens": 5, "prompt_tokens_details": {"cached_tokens": 9}}},
     Usage(0, 0, 5, 0)),  # more cached than prompt: clamped, never negative
    (Endpoint.ANTHROPIC_COUNT_TOKENS, {"input_tokens": 42}, None),
    (Endpoint.ANTHROPIC_MESSAGES, {"type": "error", "error": {"type": "overloaded_error"}}, None),
    (Endpoint.OPENAI_CHAT, {"usage": None}, None),
    (Endpoint.OPENAI_CHAT, ["not", "a", "dict"], None),
    (Endpoint.OPENAI_CHAT, {"usage": {"prompt_tokens": "12", "completion_tokens": True}}, Usage(0, 0, 0, 0)),
])
def test_usage_from_body(endpoint: Endpoint, body: object, expected: Usage | None) -> None:
    assert usage_from_body(endpoint, body) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_streams(name: str) -> None:
    endpoint, usage, model, stop, complete, has_error = EXPECTED[name]
    tap = tap_all(endpoint, [stream(name)])
    assert (tap.usage, tap.model, tap.stop_reason, tap.complete, tap.stream_error is not None, tap.tap_error) == (
        usage, model, stop, complete, has_error, None)
    assert tap.events == stream(name).count(b"\n\n") - stream(name).count(b": OPENAI PROCESSING")


def test_anthropic_error_body_is_kept() -> None:
    tap = tap_all(Endpoint.ANTHROPIC_MESSAGES, [stream("anthropic_error_stream")])
    assert tap.stream_error == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                                "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_split_point_and_encoding(name: str, encoding: str) -> None:
    endpoint = EXPECTED[name][0]
    body = ENCODINGS[encoding](stream(name))
    header = None if encoding == "identity" else encoding
    whole = facts(tap_all(endpoint, [body], header))
    assert whole[:5] == EXPECTED[name][1:]
    for i in range(len(body) + 1):
        assert facts(tap_all(endpoint, [body[:i], body[i:]], header)) == whole, i
    rng = random.Random(name + encoding)
    for _ in range(40):
        cuts = sorted(rng.sample(range(1, len(body)), rng.randint(2, 30)))
        chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]
        assert facts(tap_all(endpoint, chunks, header)) == whole


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_crlf_streams(name: str) -> None:
    body = stream(name).replace(b"\n", b"\r\n")
    assert facts(tap_all(EXPECTED[name][0], [body[i:i + 5] for i in range(0, len(body), 5)]))[:5] == EXPECTED[name][1:]


def test_message_delta_figures_override_message_start() -> None:
    events = [
        encode_event("message_start", json.dumps({"type": "message_start", "message": {
            "model": "claude-haiku-4-5", "usage": {"input_tokens": 10, "cache_read_input_tokens": 0, "output_tokens": 1}}})),
        encode_event("message_delta", json.dumps({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                                                  "usage": {"output_tokens": 40}})),
        encode_event("message_delta", json.dumps({"type": "message_delta", "delta": {"stop_reason": "max_tokens"},
                                                  "usage": {"input_tokens": 12, "cache_read_input_tokens": 900,
                                                            "cache_creation_input_tokens": 50, "output_tokens": 64}})),
        encode_event("message_stop", '{"type":"message_stop"}'),
    ]
    tap = tap_all(Endpoint.ANTHROPIC_MESSAGES, events)
    assert (tap.usage, tap.stop_reason, tap.complete) == (Usage(12, 64, 900, 50), "max_tokens", True)


def test_chat_stream_without_usage_and_with_error() -> None:
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "gpt-4.1-mini",
             "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None}]}
    done = dict(chunk, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
    tap = tap_all(Endpoint.OPENAI_CHAT, [encode_event(None, json.dumps(chunk, separators=(",", ":"))),
                                         encode_event(None, json.dumps(done)), b"data: [DONE]\n\n"])
    assert (tap.usage, tap.model, tap.stop_reason, tap.complete) == (None, "gpt-4.1-mini", "stop", True)
    error = {"error": {"message": "The server had an error", "type": "server_error", "code": None}}
    tap = tap_all(Endpoint.OPENAI_CHAT, [encode_event(None, json.dumps(chunk)), encode_event(None, json.dumps(error))])
    assert (tap.stream_error, tap.complete) == (error, False)


@pytest.mark.parametrize("kind,response,stop,failed", [
    ("response.incomplete", {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}},
     "max_output_tokens", False),
    ("response.failed", {"status": "failed", "error": {"code": "server_error", "message": "boom"}}, "failed", True),
])
def test_responses_terminal_events(kind: str, response: dict, stop: str, failed: bool) -> None:
    response = {"id": "resp_1", "model": "gpt-5", "usage": {"input_tokens": 10, "output_tokens": 2}, **response}
    tap = tap_all(Endpoint.OPENAI_RESPONSES, [encode_event(kind, json.dumps({"type": kind, "response": response}))])
    assert (tap.usage, tap.stop_reason, tap.complete, tap.stream_error is not None) == (Usage(10, 2, 0, 0), stop, True, failed)
    tap = tap_all(Endpoint.OPENAI_RESPONSES, [encode_event("error", '{"type":"error","code":"rate_limit_exceeded"}')])
    assert tap.stream_error == {"type": "error", "code": "rate_limit_exceeded"} and not tap.complete


def test_tap_never_raises() -> None:
    tap = StreamTap(Endpoint.ANTHROPIC_MESSAGES, "snappy")
    assert tap.tap_error and "snappy" in tap.tap_error
    tap.feed(b"data: x\n\n")
    tap.finish()
    assert tap.events == 0 and tap.usage is None

    tap = StreamTap(Endpoint.OPENAI_CHAT, "gzip")
    tap.feed(b"definitely not gzip data " * 10)
    assert tap.tap_error is not None
    tap.feed(gzip.compress(stream("openai_chat_stream")))  # parsing has stopped for good
    tap.finish()
    assert tap.usage is None and not tap.complete

    rng = random.Random(7)
    for endpoint in Endpoint:
        tap = StreamTap(endpoint)
        for _ in range(50):
            tap.feed(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))))
        tap.feed(b"event: message_start\ndata: {\"message\": []}\n\ndata: [1, 2]\n\ndata: {\"usage\": 5}\n\n")
        tap.feed(b"event: response.completed\ndata: {\"response\": {\"usage\": [], \"incomplete_details\": 3}}\n\n")
        tap.finish()
        tap.finish()
        assert tap.tap_error is None  # odd input is skipped, not an error of the tap


def test_finish_flushes_an_unterminated_last_event() -> None:
    tap = StreamTap(Endpoint.OPENAI_CHAT)
    tap.feed(b'data: {"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]')
    tap.feed(b"")
    assert not tap.complete
    tap.finish()
    assert (tap.complete, tap.usage) == (True, Usage(3, 1, 0, 0))


def test_sixteen_kilobyte_chunk_timing() -> None:
    """Measured and printed, not asserted (shared CPU): parse + usage of one 16 KB chunk."""
    for name in ("anthropic_stream", "openai_chat_stream", "openai_responses_stream"):
        chunk = (stream(name) * 6)[:16384]
        runs = []
        for _ in range(30):
            tap = StreamTap(EXPECTED[name][0])
            t0 = time.perf_counter()
            tap.feed(chunk)
            runs.append(time.perf_counter() - t0)
        print(f"\n{name}: 16 KB chunk, {tap.events} events, median {1e6 * sorted(runs)[15]:.0f} us")
        assert tap.tap_error is None and tap.events > 10
