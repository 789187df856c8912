"""content_decoding: every supported encoding, stacked, split anywhere, and bad input."""

from __future__ import annotations

import gzip
import random
import zlib
from pathlib import Path

import brotli
import pytest
import zstandard

from headroom_core.content_decoding import ContentDecodingError, StreamDecoder

STREAM = (Path(__file__).parent / "data" / "anthropic_stream.sse").read_bytes()


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def zstd_frames(data: bytes) -> bytes:
    c = zstandard.ZstdCompressor()
    half = len(data) // 2
    return c.compress(data[:half]) + c.compress(data[half:])


ENCODERS = {
    "identity": lambda b: b,
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,
    "deflate": zlib.compress,
    "deflate-raw": raw_deflate,
    "br": brotli.compress,
    "zstd": zstandard.ZstdCompressor().compress,
    "zstd-frames": zstd_frames,
    "gzip-members": lambda b: gzip.compress(b[:1000]) + gzip.compress(b[1000:]),
}


def header(name: str) -> str:
    return {"deflate-raw": "deflate", "zstd-frames": "zstd", "gzip-members": "gzip"}.get(name, name)


def decode(encoding: str | None, chunks: list[bytes]) -> bytes:
    decoder = StreamDecoder(encoding)
    return b"".join(decoder.feed(c) for c in chunks) + decoder.flush()


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_split_point(name: str) -> None:
    body = ENCODERS[name](STREAM)
    assert decode(header(name), [body]) == STREAM
    for i in range(len(body) + 1):
        assert decode(header(name), [body[:i], body[i:]]) == STREAM, i


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_byte_by_byte_and_random_chunks(name: str) -> None:
    body = ENCODERS[name](STREAM)
    assert decode(header(name), [body[i:i + 1] for i in range(len(body))]) == STREAM
    rng = random.Random(name)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(body)), min(len(body) - 1, rng.randint(2, 20))))
        assert decode(header(name), [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)])]) == STREAM


@pytest.mark.parametrize("encoding", ["gzip, br", "br,gzip", "deflate, zstd", "gzip, identity, gzip"])
def test_stacked_encodings_are_undone_right_to_left(encoding: str) -> None:
    body = STREAM
    for name in [n.strip() for n in encoding.split(",")]:
        body = ENCODERS[name](body)
    assert decode(encoding, [body]) == STREAM
    assert decode(encoding, [body[i:i + 7] for i in range(0, len(body), 7)]) == STREAM


@pytest.mark.parametrize("encoding", [None, "", "identity", " Identity ", "GZIP"])
def test_names_are_case_and_space_insensitive(encoding: str | None) -> None:
    body = gzip.compress(STREAM) if encoding == "GZIP" else STREAM
    assert decode(encoding, [body]) == STREAM


@pytest.mark.parametrize("encoding", ["compress", "gzip, snappy", "x-unknown"])
def test_unknown_encoding_raises_at_construction(encoding: str) -> None:
    with pytest.raises(ValueError, match="unsupported content-encoding"):
        StreamDecoder(encoding)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_corrupt_data_raises_content_decoding_error(encoding: str) -> None:
    decoder = StreamDecoder(encoding)
    with pytest.raises(ContentDecodingError):
        decoder.feed(b"this is plainly not compressed data, not even a little bit" * 4)
        decoder.flush()
    assert issubclass(ContentDecodingError, ValueError)


def test_truncated_stream_gives_what_it_can() -> None:
    body = gzip.compress(STREAM)
    decoder = StreamDecoder("gzip")
    out = decoder.feed(body[: len(body) // 2]) + decoder.flush()
    assert STREAM.startswith(out) and 0 < len(out) < len(STREAM)


def test_gzip_trailing_padding_is_ignored() -> None:
    assert decode("gzip", [gzip.compress(STREAM) + b"\0\0\0\0"]) == STREAM


def test_tiny_deflate_bodies() -> None:
    assert decode("deflate", [zlib.compress(b"")]) == b""
    assert decode("deflate", [raw_deflate(b"")]) == b""
    assert decode("deflate", []) == b""
