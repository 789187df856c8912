"""Request log: one JSON line per record, messages only on request, rotation-safe, no keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from headroom_core.records import RequestRecord, TransformSummary
from headroom_core.spend.request_log import RequestLog
from headroom_core.tenancy import tenant_of
from headroom_core.usage import Usage

API_KEY = "sk-ant-api03-" + "A" * 40


def record(i: int = 0, **kw) -> RequestRecord:
    base = dict(
        request_id=f"req_{i}", tenant=tenant_of({"x-api-key": API_KEY}), provider="anthropic",
        endpoint="anthropic.messages", model="claude-sonnet-4-5", stream=True, status=200,
        started_at=1_750_000_000.5, tokens_before=1000, tokens_after=400,
        usage=Usage(input_tokens=350, output_tokens=20, cache_read_tokens=50, cache_write_tokens=0),
        cost_usd=0.00138, cache="miss", transforms=(TransformSummary("json", 800, 200),),
        retrieval_rounds=1, overhead_ms=3.25, latency_ms=812.0,
        messages=[{"role": "user", "content": "secret plan ü"}])
    base.update(kw)
    return RequestRecord(**base)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_one_line_with_every_field(tmp_path):
    log = RequestLog(str(tmp_path / "r.jsonl"), log_messages=False)
    log.write(record())
    (line,) = lines(tmp_path / "r.jsonl")
    assert line["time"] == "2025-06-15T15:06:40.500Z"
    assert line["tenant"].startswith("t_") and line["stream"] is True
    assert (line["tokens_before"], line["tokens_after"], line["tokens_saved"]) == (1000, 400, 600)
    assert line["usage"] == {"input_tokens": 350, "output_tokens": 20, "cache_read_tokens": 50,
                             "cache_write_tokens": 0}
    assert line["cost_usd"] == 0.00138 and line["cache"] == "miss"
    assert line["transforms"] == [{"kind": "json", "tokens_before": 800, "tokens_after": 200, "count": 1}]
    assert line["retrieval_rounds"] == 1 and line["overhead_ms"] == 3.25
    assert "messages" not in line


def test_messages_only_with_log_messages(tmp_path):
    log = RequestLog(str(tmp_path / "r.jsonl"), log_messages=True)
    log.write(record())
    assert lines(tmp_path / "r.jsonl")[0]["messages"] == [{"role": "user", "content": "secret plan ü"}]


def test_no_api_key_ever_reaches_the_file(tmp_path):
    log = RequestLog(str(tmp_path / "r.jsonl"), log_messages=True)
    log.write(record(error=f"upstream said: invalid key {API_KEY}",
                     messages=[{"role": "user", "content": f"my key is {API_KEY}"},
                               {"role": "user", "content": "Authorization: Bearer " + "b" * 30}]))
    text = (tmp_path / "r.jsonl").read_text()
    assert API_KEY not in text and "b" * 30 not in text and "[redacted]" in text


def test_reopens_after_rotation_by_rename_and_by_delete(tmp_path):
    path = tmp_path / "r.jsonl"
    log = RequestLog(str(path), log_messages=False)
    log.write(record(1))
    os.rename(path, tmp_path / "r.jsonl.1")  # logrotate's default: move, then the app goes on
    log.write(record(2))
    os.remove(path)
    log.write(record(3))
    assert [l["request_id"] for l in lines(tmp_path / "r.jsonl.1")] == ["req_1"]
    assert [l["request_id"] for l in lines(path)] == ["req_3"]


def test_lines_never_interleave_across_threads_and_processes(tmp_path):
    path = tmp_path / "r.jsonl"
    big = "x" * 100_000  # far beyond PIPE_BUF: still one write per line
    code = ("import sys; sys.path.insert(0, sys.argv[2]); from test_request_log import record;"
            "from headroom_core.spend.request_log import RequestLog;"
            f"log = RequestLog(sys.argv[1], True)\nfor i in range(20): log.write(record(1000 + i, error={big!r}))")
    here = os.path.dirname(__file__)
    proc = subprocess.Popen([sys.executable, "-c", code, str(path), here])
    log = RequestLog(str(path), log_messages=True)
    threads = [threading.Thread(target=lambda n=n: [log.write(record(n * 100 + i, error=big))
                                                    for i in range(10)]) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert proc.wait(timeout=60) == 0
    parsed = lines(path)
    assert len(parsed) == 50 and all(p["error"] == big for p in parsed)


def test_file_is_private_and_unwritable_path_fails_at_start(tmp_path):
    path = tmp_path / "sub" / "r.jsonl"
    RequestLog(str(path), log_messages=False)
    assert path.exists() and (path.stat().st_mode & 0o077) == 0
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        RequestLog(str(blocker / "r.jsonl"), log_messages=False)
