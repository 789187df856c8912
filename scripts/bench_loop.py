"""`make bench-loop`: does compressing a huge tool output slow other requests down, and what
does optimising add to the latency of a request carrying a fresh 100k-token tool output?

One mitmdump process (`-s addons/headroom.py`, reverse mode) in front of the fake provider,
which runs in a process of its own (so its parsing of the big body does not compete with the
measuring client for this process's GIL). A small request is sent back to back over one keep-alive connection, first alone (the
baseline), then while a request carrying a 10 MB tool output goes through the same proxy.
The delay of a small request is its latency minus the baseline's median. Reported: the small
requests that overlapped the big one, their delay p50 / p99 / max, and how the big one went.
Writes bench-results/loop.md and prints it. Target (issue 3): ≤ 50 ms.

Added latency: requests each carrying a tool output never seen before (~100k tokens; a new seed
every time, so no memo helps) go alternately through a proxy with optimisation on and one with
`headroom_optimize=false`, both in front of the same provider; reported per output kind, p50 /
p99 of each and of the paired difference (on minus off). Target (issue 3): compression of a
100k-token output ≤ 20 ms p50 / ≤ 100 ms p99.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

import httpx  # noqa: E402

import workloads as W  # noqa: E402
from proxy_runner import free_port, mitmdump, mitmdump_plain  # noqa: E402

SMALL = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
    {"role": "user", "content": "What is the capital of France?"}]}).encode()
HEADERS = {"content-type": "application/json", "x-api-key": "sk-bench-loop",
           "anthropic-version": "2023-06-01"}
TARGET_MS = 50.0


def big_body(kind: str, size: int = 10_000_000) -> bytes:
    """An Anthropic request whose one tool result is a ~`size`-byte log or JSON array."""
    gen, param, base = (W.incident_log, "lines", 2000) if kind == "log" else (W.db_rows, "n", 1000)
    probe = gen(**{param: base})
    w = gen(**{param: max(1, round(base * size / len(probe.text.encode())))})
    return json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [
        {"role": "user", "content": w.query},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_big", "name": w.tool_name,
                                           "input": w.tool_args}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_big",
                                      "content": w.text}]}],
        "tools": [{"name": w.tool_name, "input_schema": {"type": "object"}}]}).encode()


FRESH_KINDS = {  # generator, size parameter, a size near 100k tokens (scaled exactly below)
    "incident log": (W.incident_log, "lines", 2650), "issue-tracker JSON": (W.issue_json, "n", 135),
    "database rows": (W.db_rows, "n", 1400), "code search": (W.code_search, "hits", 4300),
    "test-runner output": (W.test_output, "n", 5000)}


def fresh_body(kind: str, seed: int, target: int = 100_000) -> tuple[bytes, int]:
    """An Anthropic request whose one tool result is a never-seen ~`target`-token output."""
    from headroom_core.tokens import count_text

    gen, param, base = FRESH_KINDS[kind]
    w = gen(seed=seed, **{param: base})
    n = count_text(w.text)
    if abs(n - target) > target // 50:
        w = gen(seed=seed, **{param: max(1, round(base * target / n))})
        n = count_text(w.text)
    body = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [
        {"role": "user", "content": w.query},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": w.tool_name,
                                           "input": w.tool_args}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": w.text}]}],
        "tools": [{"name": w.tool_name, "input_schema": {"type": "object"}}]}).encode()
    return body, n


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def added_latency(on_url: str, off_url: str, runs: int, on_pid: int = 0, off_pid: int = 0) -> list[dict]:
    """Per kind: latency of fresh-output requests with optimisation on and off, alternating, and
    the CPU time each proxy process spent per request (accounting after the response included)."""
    rows = []
    seed = 1000
    with httpx.Client(base_url=on_url, trust_env=False, timeout=60) as on, \
            httpx.Client(base_url=off_url, trust_env=False, timeout=60) as off:
        for _ in range(3):  # first requests load the optimiser, the tokenizer, TOIN's store
            seed += 1
            body, _ = fresh_body("incident log", seed)
            for c in (on, off):
                assert c.post("/v1/messages", content=body, headers=HEADERS).status_code == 200
        for kind in FRESH_KINDS:
            lat: dict[str, list[float]] = {"on": [], "off": []}
            tokens = []
            bodies = [fresh_body(kind, seed + 1 + i) for i in range(runs)]
            seed += runs
            on.get("/stats"), off.get("/stats")  # earlier requests accounted before the CPU clock starts
            cpu0 = (cpu_seconds(on_pid), cpu_seconds(off_pid))
            for i, (body, n) in enumerate(bodies):
                tokens.append(n)
                order = (("on", on), ("off", off)) if i % 2 == 0 else (("off", off), ("on", on))
                for name, c in order:
                    t0 = time.perf_counter()
                    resp = c.post("/v1/messages", content=body, headers=HEADERS)
                    lat[name].append((time.perf_counter() - t0) * 1000)
                    assert resp.status_code == 200
            stats = on.get("/stats").json()  # returns once this kind's requests are accounted
            off.get("/stats")
            cpu = [(cpu_seconds(pid) - c0) * 1000 / runs for pid, c0 in zip((on_pid, off_pid), cpu0)]
            diff = [a - b for a, b in zip(lat["on"], lat["off"])]
            rows.append({"kind": kind, "tokens": statistics.median(tokens), "runs": runs,
                         "on50": pct(lat["on"], 0.5), "on99": pct(lat["on"], 0.99),
                         "off50": pct(lat["off"], 0.5), "off99": pct(lat["off"], 0.99),
                         "d50": pct(diff, 0.5), "d99": pct(diff, 0.99), "saved": stats["tokens"]["saved"],
                         "cpu_on": cpu[0], "cpu_off": cpu[1],
                         "errors": stats["requests"]["errors"]})
    return rows


def latency_report(rows: list[dict]) -> str:
    lines = ["", "# Added latency of a fresh ~100k-token tool output (optimise on vs `headroom_optimize=false`)", "",
             f"Load average {', '.join(f'{x:.1f}' for x in os.getloadavg())} at the end. Each request carries a tool "
             "output never seen before; on and off alternate over the same bodies; the difference is paired "
             "per body. Includes mitmproxy's own handling of the ~400 KB body in both columns. The CPU column is "
             "each proxy process's CPU time per request (both count the request's tokens after the response; "
             "wall-clock figures grow with the machine's load, CPU time much less).", "",
             "| output | tokens | runs | off p50 / p99 | on p50 / p99 | added p50 | added p99 | target | proxy CPU per request, off / on |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ok = "✓" if r["d50"] <= 20 and r["d99"] <= 100 else "✗"
        lines.append(f"| {r['kind']} | {r['tokens']:,.0f} | {r['runs']} | {r['off50']:.1f} / {r['off99']:.1f} ms | "
                     f"{r['on50']:.1f} / {r['on99']:.1f} ms | {r['d50']:.1f} ms | {r['d99']:.1f} ms | ≤20 / ≤100 ms {ok} | "
                     f"{r['cpu_off']:.0f} / {r['cpu_on']:.0f} ms |")
    return "\n".join(lines) + "\n"


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))] if s else float("nan")


def small_latencies(client: httpx.Client, until: threading.Event | None, count: int = 0) -> list[tuple[float, float]]:
    """(start, latency ms) of small requests sent back to back: `count` of them, or until set."""
    out = []
    while (until is not None and not until.is_set()) or len(out) < count:
        t0 = time.perf_counter()
        resp = client.post("/v1/messages", content=SMALL, headers=HEADERS)
        assert resp.status_code == 200 and resp.json()["type"] == "message"
        out.append((t0, (time.perf_counter() - t0) * 1000))
        time.sleep(0.002)
    return out


def run_case(proxy_url: str, kind: str, headroom: bool = True) -> dict:
    body = big_body(kind)
    done = threading.Event()
    big: dict = {}

    def send_big() -> None:
        with httpx.Client(base_url=proxy_url, trust_env=False, timeout=120) as c:
            big["start"] = time.perf_counter()
            resp = c.post("/v1/messages", content=body, headers=HEADERS)
            big["end"] = time.perf_counter()
            big["status"] = resp.status_code
        done.set()

    with httpx.Client(base_url=proxy_url, trust_env=False, timeout=120) as c:
        small_latencies(c, None, 30)  # warm the connection and the proxy's path
        if headroom:  # load what a process loads once (the optimiser, the tokenizer, the relay)
            assert c.post("/v1/messages", content=fresh_body("incident log", 7)[0], headers=HEADERS).status_code == 200
            c.get("/stats")  # returns once the accounting worker has caught up
        base = [ms for _, ms in small_latencies(c, None, 150)]
        stats0 = c.get("/stats").json() if headroom else None
        worker = threading.Thread(target=send_big)
        worker.start()
        during = small_latencies(c, done)
        worker.join()
        stats1 = c.get("/stats").json() if headroom else None  # waits for the accounting
    overlapped = [ms for t0, ms in during if big["start"] <= t0 <= big["end"]]
    base50 = statistics.median(base)
    delays = [max(0.0, ms - base50) for ms in overlapped]
    saved = before = errors = 0
    if headroom:
        saved = stats1["tokens"]["saved"] - stats0["tokens"]["saved"]
        before = stats1["tokens"]["before"] - stats0["tokens"]["before"]
        errors = stats1["requests"]["errors"] - stats0["requests"]["errors"]
    return {"kind": kind if headroom else f"{kind}, plain mitmdump (no addons)", "mb": len(body) / 1e6, "big_s": big["end"] - big["start"],
            "status": big["status"], "saved": saved / max(1, before), "errors": errors,
            "base50": base50, "base99": pct(base, 0.99), "n": len(overlapped),
            "d50": pct(delays, 0.5), "d99": pct(delays, 0.99),
            "dmax": max(delays, default=float("nan")),
            # when the worst ones began, in s after the big request was sent (diagnostics)
            "worst_at": sorted(((ms - base50, t0 - big["start"]) for t0, ms in during
                                if big["start"] <= t0 <= big["end"]), reverse=True)[:4]}


class ProviderProcess:
    """tests/fake_provider.py's FakeProvider in a child process, stopped by its pid."""

    def __init__(self) -> None:
        self.port = free_port()
        code = ("import sys, time, faulthandler, signal; sys.path.insert(0, sys.argv[1]); faulthandler.register(signal.SIGUSR1, all_threads=True); "
                "from fake_provider import FakeProvider; "
                "FakeProvider(port=int(sys.argv[2])).start(); print('ready', flush=True); "
                "time.sleep(1e9)")
        self.proc = subprocess.Popen([sys.executable, "-c", code, str(ROOT / "tests"), str(self.port)],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == b"ready"
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)


def saved_text(r: dict) -> str:
    if r["kind"].endswith("(no addons)"):
        return "-"
    return f"{r['saved']:.1%}" if r["saved"] else "0 (budget exceeded: original forwarded)"


def report(rows: list[dict]) -> str:
    lines = ["# Event-loop latency under a 10 MB tool output", "",
             f"Python {platform.python_version()}, {os.cpu_count()} CPUs, load average "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} at start; one mitmdump with the "
             "headroom addons (response cache off) in front of the fake provider on loopback.", "",
             "Delay = a small request's latency minus the median latency of small requests sent "
             "alone; only small requests that started while the big one was in flight count.", "",
             "| big output | size | big request took | tokens saved | small alone p50 / p99 | "
             "small requests during | delay p50 | p99 | max | the 3 worst began at | target |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
    for r in rows:
        ok = "✓" if r["dmax"] <= TARGET_MS else "✗"
        lines.append(f"| {r['kind']} | {r['mb']:.1f} MB | {r['big_s']:.2f} s ({r['status']}) | "
                     f"{saved_text(r)} | {r['base50']:.1f} / {r['base99']:.1f} ms | {r['n']} | "
                     f"{r['d50']:.1f} ms | {r['d99']:.1f} ms | {r['dmax']:.1f} ms | "
                     f"{', '.join(f'{at:.2f} s' for _, at in r['worst_at'][:3])} | "
                     f"≤{TARGET_MS:.0f} ms {ok} |")
    lines += ["", "\"Began at\": seconds after the big request was sent. Early ones overlap "
              "mitmproxy receiving the 10 MB body (compare the plain-mitmdump row); later ones "
              "the optimiser's single long C-level steps (the body's JSON parse, scans over the "
              "whole output), which hold the GIL the event loop needs."]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Arguments pick the parts: `log`, `json` (the 10 MB cases), `latency` (fresh 100k outputs);
    none: all three. BENCH_RUNS sets the latency runs per kind (default 20)."""
    parts = sys.argv[1:] or ["log", "json", "latency"]
    kinds = [k for k in parts if k in ("log", "json")]
    tmp = Path(tempfile.mkdtemp(prefix="headroom-bench-loop-"))
    provider = ProviderProcess()
    rows: list[dict] = []
    latency: list[dict] = []
    try:
        if kinds:
            proxy = mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir")
            try:
                rows = [run_case(proxy.url, kind) for kind in kinds]
            finally:
                proxy.stop()
            # The same traffic through mitmproxy alone: what receiving and forwarding 10 MB costs.
            plain = mitmdump_plain(provider.url, tmp / "plain.log", tmp / "confdir")
            try:
                rows.append(run_case(plain.url, kinds[0], headroom=False))
            finally:
                plain.stop()
        if "latency" in parts:
            on = mitmdump(provider.url, tmp / "on.log", tmp / "confdir")
            off = mitmdump(provider.url, tmp / "off.log", tmp / "confdir", sets={"headroom_optimize": "false"})
            try:
                latency = added_latency(on.url, off.url, int(os.environ.get("BENCH_RUNS", "20")),
                                        on.proc.pid, off.proc.pid)
            finally:
                on.stop()
                off.stop()
    finally:
        provider.stop()
    text = (report(rows) if rows else "") + (latency_report(latency) if latency else "")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "loop.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
