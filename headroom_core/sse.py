"""Incremental server-sent events: a parser for chunks cut anywhere, and the matching writer.

The parser follows the WHATWG event-stream rules (LF, CRLF and CR line ends; `:` comments; a
field without a colon; one leading space stripped from a value; data lines joined with "\\n";
a leading BOM ignored; UTF-8 decoded per complete line, so a code point split across chunks is
fine). Each event also carries its exact bytes, so a relay can forward events it did not change
verbatim: concatenating every event's `raw` (plus whatever `close` returns) gives the stream.

Two choices beyond the spec, both for proxies rather than browsers:
- `SSEEvent.id` / `retry` are the fields written in *that* event (None when absent); the
  spec's sticky last-event-id is `SSEParser.last_event_id`.
- `close()` dispatches a final event that has data but no terminating blank line (the spec
  discards it; some OpenAI-compatible servers end with "data: [DONE]\\n" and nothing else).
A line ending in CR at the very end of a chunk is held until the next chunk shows whether an LF
follows, so the event's `raw` is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEEvent", "SSEParser", "encode_event"]

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class SSEEvent:
    event: str | None  # the event field; None when the event had none ("message" to a browser)
    data: str
    id: str | None = None
    retry: int | None = None
    raw: bytes = b""  # exact bytes, from the end of the previous event through the blank line


class SSEParser:
    """Feed it bytes as they arrive; it returns each event once its blank line has arrived."""

    def __init__(self) -> None:
        self.last_event_id: str = ""
        self._tail = b""  # an unterminated line (or one ending in CR) from the previous chunk
        self._pending: list[bytes] = []  # more of that line, not yet joined to it
        self._started = False  # past the optional BOM
        self._reset_event()
        self._raw: list[bytes] = []

    def _reset_event(self) -> None:
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._started and self._tail and b"\n" not in chunk and b"\r" not in chunk:
            self._pending.append(bytes(chunk))  # a long line arriving in pieces: join once, later
            return []
        if self._pending:
            self._tail = b"".join([self._tail, *self._pending])
            self._pending = []
        buf = self._tail + chunk if self._tail else bytes(chunk)
        self._tail = b""
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._tail = buf  # could still be the start of a BOM
                return []
            self._started = True
            if buf.startswith(_BOM):
                self._raw.append(_BOM)
                buf = buf[3:]
        if b"\r" not in buf:  # the common case: LF line ends, split at C speed
            lines = buf.split(b"\n")
            self._tail = lines.pop()
            ends = None
        else:
            parts = buf.splitlines(True)  # bytes.splitlines knows exactly LF, CR and CRLF
            if not parts[-1].endswith(b"\n"):  # unterminated, or a CR that may yet become CRLF
                self._tail = parts.pop()
            lines = [part.rstrip(b"\r\n") for part in parts]
            ends = [len(part) for part in parts]
        return self._scan(buf, lines, ends)

    def close(self) -> list[SSEEvent]:
        """End of stream: the unterminated remainder is a last line, then a pending event is sent."""
        tail, self._tail = b"".join([self._tail, *self._pending]), b""
        self._pending = []
        if tail and not self._started and tail.startswith(_BOM):
            self._raw.append(_BOM)
            tail = tail[3:]
        parts = tail.splitlines(True)  # a held CR line may have had more bytes appended
        out = self._scan(tail, [p.rstrip(b"\r\n") for p in parts], [len(p) for p in parts])
        if self._data:
            out += self._scan(b"", [b""], [0])  # the blank line the stream never sent
        self._raw = []
        self._reset_event()
        self._started = False
        return out

    def _scan(self, buf: bytes, lines: list[bytes], ends: list[int] | None) -> list[SSEEvent]:
        """Apply complete lines of `buf` in order; `ends` gives each line's length with its end
        (None: each line ends in one LF). Raw bytes are sliced from `buf`, not copied per line."""
        out: list[SSEEvent] = []
        event, data, id_, retry = self._event, self._data, self._id, self._retry
        start = pos = 0  # `start`: where the pending event's bytes begin in buf
        for n, line in enumerate(lines):
            pos += len(line) + 1 if ends is None else ends[n]
            if not line:  # blank line: dispatch
                if data:
                    raw = buf[start:pos]
                    if self._raw:
                        raw = b"".join(self._raw) + raw
                        self._raw = []
                    out.append(SSEEvent(event, "\n".join(data), id_, retry, raw))
                    start = pos
                    data = []
                event = id_ = retry = None  # an event without data is dropped; its bytes stay
                continue
            if line.startswith(b"data: "):  # how providers write nearly every line
                data.append(line[6:].decode("utf-8", "replace"))
                continue
            if line[0] == 0x3A:  # ":" comment
                continue
            colon = line.find(b":")
            if colon < 0:
                field, value = line, b""
            else:
                field = line[:colon]
                value = line[colon + 2:] if line[colon + 1:colon + 2] == b" " else line[colon + 1:]
            if field == b"data":
                data.append(value.decode("utf-8", "replace"))
            elif field == b"event":
                event = value.decode("utf-8", "replace")
            elif field == b"id":
                if b"\0" not in value:
                    id_ = self.last_event_id = value.decode("utf-8", "replace")
            elif field == b"retry":
                if value.isdigit():
                    retry = int(value)
            # any other field is ignored, as the spec says
        if pos > start:
            self._raw.append(buf[start:pos])
        self._event, self._data, self._id, self._retry = event, data, id_, retry
        return out


def encode_event(event: str | None, data: str, id: str | None = None) -> bytes:
    """One event in the form providers send: `event:` line, `data:` line(s), blank line."""
    for name, value in (("event", event), ("id", id)):
        if value is not None and ("\n" in value or "\r" in value):
            raise ValueError(f"an SSE {name} cannot contain a line break")
    parts = []
    if event is not None:
        parts.append(f"event: {event}\n")
    if id is not None:
        parts.append(f"id: {id}\n")
    if "\r" in data:
        data = data.replace("\r\n", "\n").replace("\r", "\n")
    for line in data.split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")
