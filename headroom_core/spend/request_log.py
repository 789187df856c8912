"""The request log (--log-file): one JSON line per finished request, append-only.

Safe under log rotation: before each write the path is stat'ed (one cheap syscall) and the file
reopened when it was moved away or deleted (logrotate's create mode), so lines never go on into
a rotated file. Each line is one `write` on an O_APPEND descriptor, so lines from several threads
or processes never interleave. Nothing here can hold an API key: a record carries the tenant
hash, never headers; message content is written only when `log_messages` is on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import datetime, timezone
from typing import Any

from ..records import RequestRecord

log = logging.getLogger(__name__)

# Provider credentials by their documented shapes (Anthropic sk-ant-..., OpenAI sk-/sk-proj-...),
# and bearer tokens: an upstream error or a logged prompt that quotes one is written redacted.
_KEY_PATTERN = re.compile(r"\bsk-[A-Za-z0-9_\-]{16,}|(?i:bearer)\s+[A-Za-z0-9._\-]{16,}")
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z")


def record_line(record: RequestRecord, log_messages: bool) -> dict[str, Any]:
    """The log line of one record, as a dict (also useful to /stats and tests)."""
    u = record.usage
    line: dict[str, Any] = {
        "time": _iso(record.started_at),
        "request_id": record.request_id,
        "tenant": record.tenant,
        "provider": record.provider,
        "endpoint": record.endpoint,
        "model": record.model,
        "stream": record.stream,
        "status": record.status,
        "tokens_before": record.tokens_before,
        "tokens_after": record.tokens_after,
        "tokens_saved": record.tokens_saved,
        "usage": {"input_tokens": u.input_tokens, "output_tokens": u.output_tokens,
                  "cache_read_tokens": u.cache_read_tokens,
                  "cache_write_tokens": u.cache_write_tokens},
        "cost_usd": round(record.cost_usd, 8),
        "cache": record.cache,
        "transforms": [{"kind": t.kind, "tokens_before": t.tokens_before,
                        "tokens_after": t.tokens_after, "count": t.count}
                       for t in record.transforms],
        "retrieval_rounds": record.retrieval_rounds,
        "retrieved_hashes": list(record.retrieved_hashes),
        "retrieved_bytes": record.retrieved_bytes,
        "overhead_ms": round(record.overhead_ms, 3),
        "latency_ms": round(record.latency_ms, 3),
        "refused": record.refused,
        "error": record.error,
    }
    if log_messages and record.messages is not None:
        line["messages"] = record.messages
    return line


def _default(value: Any) -> Any:
    # Parsed bodies may hold jsonfmt.JsonNumber (a str subclass, handled by json already),
    # bytes from a tool result, or other odd leaves: write them readably, never fail the line.
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


class RequestLog:
    """Append records to `path` as JSON lines; thread-safe, never raises into the request path."""

    def __init__(self, path: str, log_messages: bool) -> None:
        self.path = os.path.expanduser(path)
        self.log_messages = log_messages
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._open()  # a bad path fails at start, not on the first request

    def _open(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        # 0o600: with --log-messages the file holds prompts; without, it still names tenants.
        fd = os.open(self.path, _FLAGS, 0o600)
        st = os.fstat(fd)
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)

    def _current(self) -> int:
        try:
            st = os.stat(self.path)
            if (st.st_dev, st.st_ino) != self._ident:
                self._open()  # rotated: the path now names another file
        except FileNotFoundError:
            self._open()  # rotated away (or deleted): start a new file at the path
        assert self._fd is not None
        return self._fd

    def write(self, record: RequestRecord) -> None:
        text = json.dumps(record_line(record, self.log_messages), ensure_ascii=False,
                          separators=(",", ":"), default=_default)
        data = (_KEY_PATTERN.sub("[redacted]", text) + "\n").encode("utf-8", "replace")
        with self._lock:
            try:
                fd = self._current()
                view = memoryview(data)
                while view:  # a regular file takes it in one go; the loop is for odd targets
                    view = view[os.write(fd, view):]
            except OSError as e:
                log.warning("request log %s: write failed: %s", self.path, e)

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
