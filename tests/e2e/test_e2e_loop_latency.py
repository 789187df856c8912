"""Heavy compression never stops the proxy serving others: while a 10 MB tool output (and an
output whose line runs for hundreds of kilobytes) is being optimised, small requests through the
same mitmdump complete and reach the provider unchanged. Timings are measured by
scripts/bench_loop.py; here only behaviour is asserted (a frozen event loop or a GIL held for
minutes shows up as small requests that never complete)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import workloads as W  # noqa: E402
from bench_loop import HEADERS, SMALL, big_body  # noqa: E402
from headroom_core.compression.markers import find_markers  # noqa: E402
from proxy_runner import mitmdump  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def proxy(provider, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("loop")
    proc = mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir")
    yield proc
    proc.stop()


def long_line_log() -> bytes:
    """A log whose third line carries a 400 KB compact JSON payload (no spaces, no slashes)."""
    w = W.incident_log(seed=61, lines=1500)
    payload = json.dumps([{"order": i, "cents": i * 7, "state": "settled"} for i in range(10_000)],
                         separators=(",", ":"))
    lines = w.text.split("\n")
    lines.insert(2, "2025-03-14T09:00:00.400Z DEBUG [http] response body=" + payload)
    text = "\n".join(lines)
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [
        {"role": "user", "content": w.query},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash",
                                           "input": w.tool_args}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                      "content": text}]}],
        "tools": [{"name": "Bash", "input_schema": {"type": "object"}}]}).encode()


def small_requests_during(proxy, provider, big: bytes) -> tuple[list[tuple[float, float]], dict]:
    """Send `big` in a thread and small requests back to back until it returns. Every small
    request must come back correct; returns their (start, end) times and the big one's."""
    outcome: dict = {}

    def send_big() -> None:
        with httpx.Client(base_url=proxy.url, trust_env=False, timeout=120) as c:
            outcome["start"] = time.monotonic()
            outcome["status"] = c.post("/v1/messages", content=big, headers=HEADERS).status_code
            outcome["end"] = time.monotonic()

    spans = []
    worker = threading.Thread(target=send_big)
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=30) as c:
        worker.start()
        while worker.is_alive():
            t0 = time.monotonic()
            resp = c.post("/v1/messages", content=SMALL, headers=HEADERS)
            assert resp.status_code == 200 and resp.json()["type"] == "message"
            spans.append((t0, time.monotonic()))
            time.sleep(0.005)
    worker.join()
    assert outcome["status"] == 200
    smalls = [r for r in provider.requests if r.body == SMALL]
    assert len(smalls) == len(spans)  # each reached the provider, byte for byte
    return spans, outcome


def overlapping(spans: list[tuple[float, float]], outcome: dict) -> int:
    return sum(1 for a, b in spans if a >= outcome["start"] and b <= outcome["end"])


def test_small_requests_complete_while_a_10_mb_output_is_compressed(proxy, provider):
    big = big_body("log")
    assert len(big) > 10_000_000
    spans, outcome = small_requests_during(proxy, provider, big)
    assert overlapping(spans, outcome) >= 3
    sent = [r for r in provider.requests if r.body != SMALL]
    assert len(sent) == 1
    # Compressed within the time budget, or (a slow machine) the original forwarded whole.
    assert find_markers(sent[0].body.decode()) or sent[0].body == big


def test_a_line_of_hundreds_of_kilobytes_does_not_freeze_the_proxy(proxy, provider):
    """Learning the output's signature once ran a quadratic regex over such a line with the GIL
    held (minutes for 400 KB): every connection of the proxy stalled."""
    big = long_line_log()
    spans, outcome = small_requests_during(proxy, provider, big)
    sent = [r for r in provider.requests if r.body != SMALL]
    assert len(sent) == 1 and find_markers(sent[0].body.decode())  # it was compressed
    assert len(sent[0].body) < len(big)
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=30) as c:
        assert c.get("/stats").json()["tokens"]["saved"] > 0  # accounting went through too


@pytest.mark.parametrize("seed", range(5))
def test_windowed_error_scan_finds_what_one_scan_finds(seed, monkeypatch):
    """The JSON compressor scans for error words window by window (no long GIL hold); with
    windows far smaller than a word the matches are still exactly finditer's."""
    import random

    from headroom_core.compression import json_select as J

    rng = random.Random(seed)
    words = sorted(J._ERROR_VALUE_WORDS | J._ERROR_KEY_WORDS) + ["ok", "fine", "x"] * 10
    shapes = ['"%s"', '"%s":', 'a"%s"', '""', " ", '"', "%s"]
    for _ in range(300):
        low = "".join((shape % rng.choice(words)) if "%s" in shape else shape
                      for shape in (rng.choice(shapes) for _ in range(rng.randint(0, 200))))
        monkeypatch.setattr(J, "_SCAN_WINDOW", rng.randint(1, 60))
        assert [m.span() for m in J._error_tokens(low)] == \
            [m.span() for m in J._ERROR_TOKEN_RE.finditer(low)]
