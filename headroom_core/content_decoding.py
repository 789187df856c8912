"""Incremental decoding of a `content-encoding` body, for taps that read a stream as it passes.

mitmproxy hands stream callables the raw bytes, still compressed. `StreamDecoder` undoes gzip,
deflate (zlib or raw), br and zstd chunk by chunk, including stacked encodings ("gzip, br" is
undone right to left), concatenated gzip members and zstd frames. The bytes sent on to the client
are never these: a tap decodes a copy.
"""

from __future__ import annotations

import zlib
from typing import Any, Callable, Protocol

__all__ = ["StreamDecoder", "ContentDecodingError", "SUPPORTED"]

SUPPORTED = ("identity", "gzip", "x-gzip", "deflate", "br", "zstd")


class ContentDecodingError(ValueError):
    """The body is not valid data of its declared encoding."""


class _Stage(Protocol):
    def feed(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


class _Gzip:
    """gzip, member after member (RFC 1952 allows several); bytes after the last one ignored."""

    def __init__(self) -> None:
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._leftover = b""
        self._trailing_garbage = False

    def feed(self, data: bytes) -> bytes:
        if self._trailing_garbage:
            return b""
        out = []
        if self._leftover:
            data, self._leftover = self._leftover + data, b""
        while data:
            if self._d.eof:
                if len(data) < 2:
                    self._leftover = data
                    break
                if data[:2] != b"\x1f\x8b":  # padding some servers append, as curl tolerates
                    self._trailing_garbage = True
                    break
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(self._d.decompress(data))
            data = self._d.unused_data if self._d.eof else b""
        return b"".join(out)

    def flush(self) -> bytes:
        return b"" if self._d.eof else self._d.flush()


class _Deflate:
    """HTTP "deflate" is zlib-wrapped by the RFC, but servers send raw deflate too: sniff it."""

    def __init__(self) -> None:
        self._d: Any = None  # zlib's decompress object, once the header is known
        self._head = b""

    def feed(self, data: bytes) -> bytes:
        if self._d is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            cmf, flg = self._head[0], self._head[1]
            is_zlib = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if is_zlib else -zlib.MAX_WBITS)
            data, self._head = self._head, b""
        return b"" if self._d.eof else self._d.decompress(data)

    def flush(self) -> bytes:
        if self._d is None:  # fewer than two bytes in all: too short for zlib, try raw deflate
            if not self._head:
                return b""
            self._d = zlib.decompressobj(-zlib.MAX_WBITS)
            data, self._head = self._head, b""
            return self._d.decompress(data) + self._d.flush()
        return b"" if self._d.eof else self._d.flush()


class _Brotli:
    def __init__(self) -> None:
        try:
            import brotli
        except ImportError:
            import brotlicffi as brotli  # type: ignore[no-redef]
        self._d = brotli.Decompressor()
        self._process: Callable[[bytes], bytes] = getattr(self._d, "process", None) or self._d.decompress

    def feed(self, data: bytes) -> bytes:
        return self._process(data) if data else b""

    def flush(self) -> bytes:
        return b""


class _Zstd:
    """zstd, frame after frame (servers may flush a stream as several frames)."""

    def __init__(self) -> None:
        import zstandard

        self._new = zstandard.ZstdDecompressor().decompressobj
        self._d = self._new()

    def feed(self, data: bytes) -> bytes:
        out = []
        while data:
            out.append(self._d.decompress(data))
            if not self._d.eof:
                break
            data = self._d.unused_data
            self._d = self._new()
        return b"".join(out)

    def flush(self) -> bytes:
        return b""


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


_STAGES: dict[str, Callable[[], _Stage]] = {
    "identity": _Identity, "gzip": _Gzip, "x-gzip": _Gzip, "deflate": _Deflate,
    "br": _Brotli, "zstd": _Zstd,
}


def _errors() -> tuple[type[BaseException], ...]:
    kinds: list[type[BaseException]] = [zlib.error]
    for module, name in (("brotli", "error"), ("brotlicffi", "error"), ("zstandard", "ZstdError")):
        try:
            kinds.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(kinds)


_DECODE_ERRORS = _errors()


class StreamDecoder:
    """feed() raw chunks, get decoded bytes; flush() at the end. Unknown encodings: ValueError."""

    def __init__(self, content_encoding: str | None) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",")]
        names = [n for n in names if n and n != "identity"]
        unknown = [n for n in names if n not in _STAGES]
        if unknown:
            raise ValueError(f"unsupported content-encoding: {', '.join(unknown)}")
        # "gzip, br" means gzip was applied first: undo the last one first.
        self._stages: list[_Stage] = [_STAGES[n]() for n in reversed(names)]
        self.encodings = tuple(names)

    def feed(self, chunk: bytes) -> bytes:
        try:
            for stage in self._stages:
                if not chunk:
                    return b""
                chunk = stage.feed(chunk)
        except _DECODE_ERRORS as e:
            raise ContentDecodingError(f"{'/'.join(self.encodings)}: {e}") from None
        return chunk

    def flush(self) -> bytes:
        """What the decoders still hold; a truncated stream gives what could be decoded."""
        data = b""
        try:
            for stage in self._stages:
                data = (stage.feed(data) if data else b"") + stage.flush()
        except _DECODE_ERRORS as e:
            raise ContentDecodingError(f"{'/'.join(self.encodings)}: {e}") from None
        return data
