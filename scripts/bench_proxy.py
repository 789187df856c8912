"""Proxy benchmark (`make bench`): headroom vs a plain mitmdump reverse proxy vs direct.

All three in front of the same fake provider (tests/fake_provider.py, its own process) on
loopback. Measured per target: added latency of small requests (sequential, keep-alive),
requests/s at concurrency 1, 10 and 50 (fixed request counts), the proxy's RSS after start and
at its peak, and cold start (spawn to first proxied response). Writes bench-results/proxy.md.

    .venv/bin/python scripts/bench_proxy.py [--requests 500] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "tests"))

from proxy_runner import clean_env, free_port  # noqa: E402

BIN = Path(sys.executable).parent
BODY = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
    {"role": "user", "content": "Say hello in five words, please."}]}).encode()
TARGETS = {"p50_added_ms": 1.0, "p99_added_ms": 5.0, "rps_c10_ratio": 0.85,
           "cold_start_s": 1.5, "rss_start_mb": 100.0}


def request_bytes(host: str) -> bytes:
    return (f"POST /v1/messages HTTP/1.1\r\nHost: {host}\r\ncontent-type: application/json\r\n"
            f"x-api-key: sk-bench\r\nanthropic-version: 2023-06-01\r\n"
            f"content-length: {len(BODY)}\r\n\r\n").encode() + BODY


# --- a minimal keep-alive HTTP/1.1 client: cheap, so the proxy's cost is what is measured ---

def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    raise ValueError("benchmark responses carry content-length")


class SyncClient:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.req = request_bytes(f"127.0.0.1:{port}")
        self.buf = b""

    def call(self) -> int:
        self.sock.sendall(self.req)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.sock.recv(65536)
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        need = _content_length(head)
        while len(rest) < need:
            rest += self.sock.recv(65536)
        self.buf = rest[need:]
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.sock.close()


async def _worker(port: int, count: list[int], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    req = request_bytes(f"127.0.0.1:{port}")
    try:
        while count[0] > 0:
            count[0] -= 1
            writer.write(req)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
    finally:
        writer.close()


async def _throughput(port: int, concurrency: int, total: int) -> float:
    count, errors = [total], [0]
    t0 = time.perf_counter()
    await asyncio.gather(*[_worker(port, count, errors) for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    if errors[0]:
        raise RuntimeError(f"{errors[0]} non-200 responses")
    return total / elapsed


# --- measurements ---

@dataclass
class Result:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    rps: dict[int, list[float]] = field(default_factory=dict)  # one figure per round
    rss_start_mb: float | None = None  # listening, no request yet
    rss_first_mb: float | None = None  # after one request (tokenizer loaded)
    rss_peak_mb: float | None = None
    cold_starts: list[float] = field(default_factory=list)
    cpu_s: float = 0.0  # the proxy process's CPU time over the load rounds
    cpu_requests: int = 0

    @property
    def cpu_ms_per_request(self) -> float | None:
        return 1000 * self.cpu_s / self.cpu_requests if self.cpu_requests else None

    def rps_median(self, c: int) -> float:
        return statistics.median(self.rps[c])

    @property
    def cold_start_s(self) -> float | None:
        return statistics.median(self.cold_starts) if self.cold_starts else None

    def pct(self, q: float) -> float:
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(round(q * (len(data) - 1))))]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size of a process, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def latency(port: int, n: int, warmup: int) -> list[float]:
    client = SyncClient(port)
    try:
        for _ in range(warmup):
            client.call()
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            status = client.call()
            out.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"status {status}")
        return out
    finally:
        client.close()


def first_response_after_spawn(argv: list[str], port: int, log: Path) -> tuple[float, subprocess.Popen]:
    """Spawn, then poll with a real request until one is proxied; seconds from spawn."""
    out = open(log, "wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=clean_env(), cwd=REPO)
    deadline = t0 + 60
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited: {log.read_text()[-2000:]}")
        try:
            client = SyncClient(port)
            try:
                if client.call() == 200:
                    return time.perf_counter() - t0, proc
            finally:
                client.close()
        except (OSError, ValueError, IndexError):
            time.sleep(0.005)
    raise RuntimeError("no proxied response within 60 s")


def start_provider() -> tuple[subprocess.Popen, str]:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from fake_provider import FakeProvider;"
            "p = FakeProvider().start(); print(p.url, flush=True); sys.stdin.read(); p.stop()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(REPO / "tests")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().strip()


def proxy_argv(kind: str, provider_url: str, port: int, tmp: Path) -> list[str]:
    if kind == "mitmdump":
        return [str(BIN / "mitmdump"), "--mode", f"reverse:{provider_url}@{port}",
                "--listen-host", "127.0.0.1", "--set", "connection_strategy=lazy",
                "--set", "flow_detail=0", "--set", f"confdir={tmp / 'confdir'}"]
    # --no-cache: the benchmark repeats one request, which the response cache would answer
    # itself after the first time; what is measured here is the forwarding path.
    return [str(BIN / "headroom"), "proxy", "--port", str(port), "--data-dir", str(tmp / "data"),
            "--anthropic-api-url", provider_url, "--openai-api-url", provider_url, "--no-cache"]


def wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited: {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.01)
    raise RuntimeError("proxy did not listen within 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)


def cold_starts(kinds: list[str], provider_url: str, tmp: Path, rounds: int,
                results: dict[str, Result]) -> None:
    """Spawn to first proxied response, `rounds` times per proxy, interleaved (the CA exists:
    a first, unmeasured start creates it)."""
    for r in range(rounds + 1):
        for kind in kinds:
            port = free_port()
            seconds, proc = first_response_after_spawn(proxy_argv(kind, provider_url, port, tmp),
                                                       port, tmp / f"{kind}-cold.log")
            stop(proc)
            if r:
                results[kind].cold_starts.append(seconds)


def start_for_load(kind: str, provider_url: str, tmp: Path, result: Result) -> tuple[int, subprocess.Popen]:
    """Start a proxy for the load rounds; record its RSS idle and after a first request."""
    port = free_port()
    log = tmp / f"{kind}.log"
    proc = subprocess.Popen(proxy_argv(kind, provider_url, port, tmp), stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, env=clean_env(), cwd=REPO)
    wait_port(port, proc, log)
    time.sleep(1.0)
    result.rss_start_mb = rss_mb(proc.pid)[0]
    client = SyncClient(port)
    client.call()
    client.close()
    time.sleep(2.0)  # the first request's accounting loads the tokenizer
    result.rss_first_mb = rss_mb(proc.pid)[0]
    return port, proc


def load_round(port: int, result: Result, args: argparse.Namespace,
               proc: subprocess.Popen | None) -> None:
    cpu0 = cpu_seconds(proc.pid) if proc else 0.0
    result.latencies_ms += latency(port, args.requests, args.warmup)
    for c in (1, 10, 50):
        result.rps.setdefault(c, []).append(asyncio.run(_throughput(port, c, args.rps_requests)))
    if proc:
        result.cpu_s += cpu_seconds(proc.pid) - cpu0
        result.cpu_requests += args.requests + args.warmup + 3 * args.rps_requests


def report(results: dict[str, Result], args: argparse.Namespace) -> str:
    d, m, h = results["direct"], results["mitmdump"], results["headroom"]

    def f(v: float | None, digits: int = 2) -> str:
        return "–" if v is None else f"{v:.{digits}f}"

    added50 = h.pct(0.5) - m.pct(0.5)
    added99 = h.pct(0.99) - m.pct(0.99)
    ratio10 = h.rps_median(10) / m.rps_median(10)
    ok = {"p50": added50 <= TARGETS["p50_added_ms"], "p99": added99 <= TARGETS["p99_added_ms"],
          "rps": ratio10 >= TARGETS["rps_c10_ratio"],
          "cold": (h.cold_start_s or 99) <= TARGETS["cold_start_s"],
          "rss": (h.rss_start_mb or 999) <= TARGETS["rss_start_mb"]}

    def mark(key: str) -> str:
        return "✅" if ok[key] else "❌"

    import mitmproxy.version as mv

    lines = [
        "# Proxy benchmark", "",
        f"{time.strftime('%Y-%m-%d %H:%M:%S')} · {platform.platform()} · {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f} at the end) · Python {platform.python_version()} "
        f"· mitmproxy {mv.VERSION}", "",
        f"A small non-streamed Anthropic request ({len(BODY)} B) to the fake provider on "
        f"loopback. {args.rounds} rounds interleaving the three targets; per round "
        f"{args.requests} sequential keep-alive requests after {args.warmup} warm-up (latency), "
        f"then {args.rps_requests} requests at each concurrency (requests/s, median of rounds).",
        "",
        "| | direct | plain mitmdump | headroom | headroom vs mitmdump | target |",
        "|---|---:|---:|---:|---:|---|",
        f"| latency p50 (ms) | {f(d.pct(.5), 3)} | {f(m.pct(.5), 3)} | {f(h.pct(.5), 3)} | "
        f"{added50:+.3f} ms | ≤ +{TARGETS['p50_added_ms']} ms {mark('p50')} |",
        f"| latency p99 (ms) | {f(d.pct(.99), 3)} | {f(m.pct(.99), 3)} | {f(h.pct(.99), 3)} | "
        f"{added99:+.3f} ms | ≤ +{TARGETS['p99_added_ms']} ms {mark('p99')} |",
    ]
    for c in (1, 10, 50):
        target = f"≥ {TARGETS['rps_c10_ratio']}× {mark('rps')}" if c == 10 else ""
        lines.append(f"| requests/s, concurrency {c} | {f(d.rps_median(c), 0)} | "
                     f"{f(m.rps_median(c), 0)} | {f(h.rps_median(c), 0)} | "
                     f"{h.rps_median(c) / m.rps_median(c):.2f}× | {target} |")
    lines += [
        f"| proxy CPU per request (ms) | – | {f(m.cpu_ms_per_request, 3)} | "
        f"{f(h.cpu_ms_per_request, 3)} | {h.cpu_ms_per_request - m.cpu_ms_per_request:+.3f} ms "
        f"| |",
        f"| RSS after start, idle (MB) | – | {f(m.rss_start_mb, 1)} | {f(h.rss_start_mb, 1)} | | "
        f"≤ {TARGETS['rss_start_mb']:.0f} {mark('rss')} |",
        f"| RSS after the first request (MB) | – | {f(m.rss_first_mb, 1)} | "
        f"{f(h.rss_first_mb, 1)} | | |",
        f"| peak RSS over the run (MB) | – | {f(m.rss_peak_mb, 1)} | {f(h.rss_peak_mb, 1)} | | |",
        f"| cold start to first proxied response (s), median | – | {f(m.cold_start_s)} | "
        f"{f(h.cold_start_s)} | | ≤ {TARGETS['cold_start_s']} {mark('cold')} |",
        f"| cold start, best of {len(h.cold_starts)} (s) | – | {f(min(m.cold_starts))} | "
        f"{f(min(h.cold_starts))} | | |", "",
        "headroom runs as `headroom proxy --no-cache` (otherwise the repeated request would be "
        "a response-cache hit), other options at their defaults (a console line per request, to "
        "a log file); plain mitmdump as `mitmdump --mode reverse:... --set flow_detail=0`. Cold "
        "start is spawn to the first 200 through the proxy, the CA already created. headroom's "
        "RSS after the first request includes the tiktoken o200k encoder, loaded by the first "
        "request's accounting (in a worker thread, after the response). Proxy CPU per request "
        "(user + system time of the proxy process over the load rounds, all threads) is the "
        "figure least disturbed by other work on a shared machine.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--rps-requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--out", default=str(REPO / "bench-results" / "proxy.md"))
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup, args.rps_requests, args.rounds, args.cold_rounds = \
            100, 20, 300, 1, 2
    provider, url = start_provider()
    results = {kind: Result(kind) for kind in ("direct", "mitmdump", "headroom")}
    procs: dict[str, subprocess.Popen] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            cold_starts(["mitmdump", "headroom"], url, tmp, args.cold_rounds, results)
            ports = {"direct": int(url.rsplit(":", 1)[1])}
            for kind in ("mitmdump", "headroom"):
                ports[kind], procs[kind] = start_for_load(kind, url, tmp, results[kind])
            # Rounds interleave the targets, so drift on a shared machine hits all of them.
            for _ in range(args.rounds):
                for kind, result in results.items():
                    load_round(ports[kind], result, args, procs.get(kind))
            for kind, proc in procs.items():
                results[kind].rss_peak_mb = rss_mb(proc.pid)[1]
    finally:
        for proc in procs.values():
            stop(proc)
        provider.stdin.close()
        provider.wait(15)
    text = report(results, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
