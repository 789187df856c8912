"""headroom_core.console_line: one short line per request."""

from __future__ import annotations

import io

import pytest

from headroom_core.console_line import format_request_line, print_request_line
from headroom_core.records import RequestRecord


def record(**kw) -> RequestRecord:
    base = dict(request_id="f1", tenant="abc", provider="anthropic", endpoint="anthropic_messages",
                model="claude-sonnet-4-5", stream=False, status=200, started_at=0.0)
    base.update(kw)
    return RequestRecord(**base)


@pytest.mark.parametrize("kw, expected", [
    (dict(tokens_before=41230, tokens_after=7402, cache="miss", latency_ms=1234.4),
     "anthropic  claude-sonnet-4-5  41,230→7,402 tok -82%  cache miss  200  1,234 ms"),
    (dict(provider="openai", model="gpt-4o", stream=True, tokens_before=812, tokens_after=812,
          cache="hit", latency_ms=3.2),
     "openai  gpt-4o  stream  812 tok  cache hit  200  3 ms"),
    (dict(tokens_before=2100, status=429, refused="rate_limit", latency_ms=0.6),
     "anthropic  claude-sonnet-4-5  2,100 tok  429 rate_limit  1 ms"),
    (dict(model="", tokens_before=10, tokens_after=0, status=502, latency_ms=20,
          error="upstream\nconnection refused"),
     "anthropic  ?  10 tok  502  20 ms  error: upstream connection refused"),
    (dict(tokens_before=5000, tokens_after=1000, retrieval_rounds=2, latency_ms=900),
     "anthropic  claude-sonnet-4-5  5,000→1,000 tok -80%  retrieved×2  200  900 ms"),
])
def test_format_request_line(kw, expected):
    assert format_request_line(record(**kw)) == expected


def test_line_is_one_line_and_bounded():
    line = format_request_line(record(error="x" * 5000 + "\n" * 10))
    assert "\n" not in line and len(line) < 220


def test_quiet_prints_nothing():
    out = io.StringIO()
    print_request_line(record(tokens_before=1), quiet=True, stream=out)
    assert out.getvalue() == ""
    print_request_line(record(tokens_before=1), quiet=False, stream=out)
    assert out.getvalue().count("\n") == 1 and out.getvalue().startswith("anthropic")
