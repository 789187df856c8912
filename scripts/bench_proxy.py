"""Proxy benchmark (`make bench`): headroom vs a plain mitmdump reverse proxy vs direct.

All three in front of the same fake provider (tests/fake_provider.py, its own process) on
loopback. Measured per target: added latency of small requests (sequential, keep-alive),
requests/s at concurrency 1, 10 and 50 (fixed request counts), the proxy process's CPU time per
request (from /proc: the figure a busy shared machine disturbs least), the proxy's RSS after
start and at its peak, and cold start (spawn to first proxied response). The targets take turns
within each round, in an order reversed every other round (ABBA), and the report gives the
median of the per-round ratios with their spread. Writes bench-results/proxy.md.

    .venv/bin/python scripts/bench_proxy.py [--rounds 12] [--quick] [--variant NAME=DIR ...]

`--variant before=DIR` runs another headroom in the same rounds with PYTHONPATH=DIR (a folder
holding `headroom_core` and `headroom_addons` of another revision, e.g. symlinks into a `git
archive` of it): a before/after comparison under identical conditions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit import (BIN, REPO, KeepAliveClient, Provider, clean_env, cpu_seconds,  # noqa: E402
                      free_port, interleaved, latency, mitmdump_argv, pct, round_order, rss_mb,
                      spread, start_proxy, stop_process, throughput)

BODY = json.dumps({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
    {"role": "user", "content": "Say hello in five words, please."}]}).encode()
TARGETS = {"p50_added_ms": 1.0, "p99_added_ms": 5.0, "rps_c10_ratio": 0.85,
           "cold_start_s": 1.5, "rss_start_mb": 100.0}
CONCURRENCY = (1, 10, 50)
PROXIES = ("mitmdump", "headroom")


def request_bytes(port: int) -> bytes:
    return (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\nx-api-key: sk-bench\r\n"
            f"anthropic-version: 2023-06-01\r\ncontent-length: {len(BODY)}\r\n\r\n").encode() + BODY


# --- measurements ----------------------------------------------------------------------------------

@dataclass
class Result:
    name: str
    latencies_ms: list[float] = field(default_factory=list)  # pooled over rounds
    round_latency: list[tuple[float, float]] = field(default_factory=list)  # (p50, p99) per round
    rps: dict[int, list[float]] = field(default_factory=dict)  # one figure per round
    cpu_ms: dict[int, list[float]] = field(default_factory=dict)  # proxy CPU per request, per round
    rss_start_mb: float | None = None  # listening, no request yet
    rss_first_mb: float | None = None  # after one request (tokenizer loaded)
    rss_peak_mb: float | None = None
    cold_starts: list[float] = field(default_factory=list)
    dispatch: dict | None = None  # bench_dispatch.py's figures (headroom builds only)

    def rps_median(self, c: int) -> float:
        return statistics.median(self.rps[c])

    def cpu_pooled(self, c: int) -> float:
        """CPU per request over all rounds at once (each round ran the same request count)."""
        return statistics.fmean(self.cpu_ms[c])

    @property
    def cold_start_s(self) -> float | None:
        return statistics.median(self.cold_starts) if self.cold_starts else None


def first_response_after_spawn(argv: list[str], port: int, log: Path,
                               env: dict[str, str]) -> tuple[float, subprocess.Popen]:
    """Spawn, then poll with a real request until one is proxied; seconds from spawn."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env,
                            cwd=REPO)
    while time.perf_counter() < t0 + 60:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited: {log.read_text()[-2000:]}")
        try:
            client = KeepAliveClient(port)
            try:
                if client.exchange(request_bytes(port)).status == 200:
                    return time.perf_counter() - t0, proc
            finally:
                client.close()
        except (OSError, ValueError, IndexError):
            time.sleep(0.005)
    stop_process(proc)
    raise RuntimeError("no proxied response within 60 s")


def proxy_argv(kind: str, provider_url: str, port: int, tmp: Path) -> list[str]:
    if kind == "mitmdump":
        return mitmdump_argv(provider_url, port, tmp / "confdir")
    # --no-cache: the benchmark repeats one request, which the response cache would answer
    # itself after the first time; what is measured here is the forwarding path.
    return [str(BIN / "headroom"), "proxy", "--port", str(port),
            "--data-dir", str(tmp / f"data-{kind}"), "--anthropic-api-url", provider_url,
            "--openai-api-url", provider_url, "--no-cache"]


def proxy_env(kind: str, variants: dict[str, str]) -> dict[str, str]:
    """A variant runs with its own code first on the path."""
    if kind in variants:
        return clean_env(PYTHONPATH=variants[kind])
    return clean_env()


def cold_starts(provider_url: str, tmp: Path, rounds: int, results: dict[str, Result],
                variants: dict[str, str]) -> None:
    """Spawn to first proxied response, `rounds` times per proxy, interleaved (the CA exists:
    a first, unmeasured start creates it)."""
    for r, kind in interleaved(list(results)[1:], rounds + 1):
        port = free_port()
        seconds, proc = first_response_after_spawn(proxy_argv(kind, provider_url, port, tmp),
                                                   port, tmp / f"{kind}-cold.log",
                                                   proxy_env(kind, variants))
        stop_process(proc)
        if r:
            results[kind].cold_starts.append(seconds)


def start_for_load(kind: str, provider_url: str, tmp: Path, result: Result,
                   variants: dict[str, str]):
    """Start a proxy for the load rounds; record its RSS idle and after a first request."""
    port = free_port()
    proxy = start_proxy(proxy_argv(kind, provider_url, port, tmp), port, tmp / f"{kind}.log",
                        proxy_env(kind, variants))
    time.sleep(1.0)
    result.rss_start_mb = rss_mb(proxy.proc.pid)[0]
    latency(port, request_bytes(port), 1, 0)
    time.sleep(2.0)  # the first request's accounting loads the tokenizer
    result.rss_first_mb = rss_mb(proxy.proc.pid)[0]
    return port, proxy


def load_round(r: int, targets: tuple[str, ...], ports: dict[str, int], pids: dict[str, int],
               results: dict[str, Result], args: argparse.Namespace) -> None:
    """One round: each measurement (the latency series, then each concurrency) is taken for
    every target back to back, in an order reversed every other round, so the figures compared
    are seconds apart and see the same background load."""
    order = round_order(targets, r)
    for kind in order:
        lat = latency(ports[kind], request_bytes(ports[kind]), args.requests, args.warmup)
        results[kind].latencies_ms += lat
        results[kind].round_latency.append((pct(lat, 0.5), pct(lat, 0.99)))
    for c in CONCURRENCY:
        for kind in order:
            pid = pids.get(kind)
            cpu0 = cpu_seconds(pid) if pid else 0.0
            rps = asyncio.run(throughput(ports[kind], request_bytes(ports[kind]), c,
                                         args.rps_requests))
            results[kind].rps.setdefault(c, []).append(rps)
            if pid:
                results[kind].cpu_ms.setdefault(c, []).append(
                    1000 * (cpu_seconds(pid) - cpu0) / args.rps_requests)


def dispatch_figures(kind: str, variants: dict[str, str], rounds: int) -> dict:
    """scripts/bench_dispatch.py for one headroom build: CPU per request inside mitmproxy."""
    argv = [sys.executable, str(Path(__file__).with_name("bench_dispatch.py")),
            "--rounds", str(rounds), "--requests", "100"]
    if kind in variants:
        argv += ["--script", str(Path(variants[kind]) / "headroom_addons" / "headroom.py")]
    done = subprocess.run(argv, env=proxy_env(kind, variants), cwd=REPO, text=True, timeout=900,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dispatch_rows(builds: list[Result]) -> list[str]:
    lines = ["", "headroom's own CPU per request inside mitmproxy (scripts/bench_dispatch.py): "
             "a plain and a headroom mitmproxy master in one process, no sockets, the four "
             "events of a request for blocks of 100 small requests, the two masters' blocks "
             "alternating; process CPU time (all threads, the accounting worker included):", "",
             "| build | plain mitmproxy (µs) | with headroom (µs) | added (µs), median "
             "(IQR) | ratio | pairs |", "|---|---:|---:|---:|---:|---:|"]
    for r in builds:
        d = r.dispatch
        added = sorted(d["added_us"])
        ratios = [h / p for p, h in zip(d["plain_us"], d["headroom_us"])]
        lines.append(f"| {r.name} | {d['plain_median_us']:.0f} | {d['headroom_median_us']:.0f} | "
                     f"{d['added_median_us']:.0f} ({pct(added, .25):.0f}–{pct(added, .75):.0f}) "
                     f"| {statistics.median(ratios):.2f}× | {len(added)} |")
    return lines


# --- report ----------------------------------------------------------------------------------------

def _f(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def _spread(values: list[float], digits: int = 2, unit: str = "") -> str:
    mid, lo, hi = spread(values)
    return f"{mid:.{digits}f}{unit} ({lo:.{digits}f}–{hi:.{digits}f})"


def report(results: dict[str, Result], args: argparse.Namespace) -> str:
    d, m, h = results["direct"], results["mitmdump"], results["headroom"]
    n = len(h.round_latency)
    # Per-round comparisons: both proxies measured minutes apart, under the same load.
    ratios = {c: [hv / mv for hv, mv in zip(h.rps[c], m.rps[c])] for c in CONCURRENCY}
    d50 = [hl[0] - ml[0] for hl, ml in zip(h.round_latency, m.round_latency)]
    d99 = [hl[1] - ml[1] for hl, ml in zip(h.round_latency, m.round_latency)]
    cpu_delta = {c: [hv - mv for hv, mv in zip(h.cpu_ms[c], m.cpu_ms[c])] for c in CONCURRENCY}
    added50, added99 = statistics.median(d50), statistics.median(d99)
    ratio10 = statistics.median(ratios[10])
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
        f"(load average {args.load_before:.2f} before, {os.getloadavg()[0]:.2f} at the end) · "
        f"Python {platform.python_version()} · mitmproxy {mv.VERSION}", "",
        f"A small non-streamed Anthropic request ({len(BODY)} B) to the fake provider on "
        f"loopback. {n} rounds; in each, every measurement is taken for all targets back to "
        f"back (direct, mitmdump, headroom, then the reverse order in the next round): "
        f"{args.requests} sequential keep-alive requests after {args.warmup} warm-up (latency), "
        f"then {args.rps_requests} requests at each concurrency (requests/s, proxy CPU). "
        f"Figures are medians over rounds, with the range over rounds in brackets; "
        f"headroom-vs-mitmdump figures are taken per round (seconds apart, same machine load), "
        f"then their median.", "",
        "| | direct | plain mitmdump | headroom | headroom vs mitmdump | target |",
        "|---|---:|---:|---:|---:|---|",
        f"| latency p50 (ms) | {_f(pct(d.latencies_ms, .5), 3)} | {_f(pct(m.latencies_ms, .5), 3)} "
        f"| {_f(pct(h.latencies_ms, .5), 3)} | {_spread(d50, 3, ' ms')} "
        f"| ≤ +{TARGETS['p50_added_ms']} ms {mark('p50')} |",
        f"| latency p99 (ms) | {_f(pct(d.latencies_ms, .99), 3)} | "
        f"{_f(pct(m.latencies_ms, .99), 3)} | {_f(pct(h.latencies_ms, .99), 3)} | "
        f"{_spread(d99, 3, ' ms')} | ≤ +{TARGETS['p99_added_ms']} ms {mark('p99')} |",
    ]
    for c in CONCURRENCY:
        target = f"≥ {TARGETS['rps_c10_ratio']}× {mark('rps')}" if c == 10 else ""
        lines.append(f"| requests/s, concurrency {c} | {_f(d.rps_median(c), 0)} | "
                     f"{_spread(m.rps[c], 0)} | {_spread(h.rps[c], 0)} | "
                     f"{_spread(ratios[c], 2, '×')} | {target} |")
    for c in CONCURRENCY:
        lines.append(f"| proxy CPU per request at concurrency {c} (ms) | – | "
                     f"{_spread(m.cpu_ms[c], 3)} | {_spread(h.cpu_ms[c], 3)} | "
                     f"{_spread(cpu_delta[c], 3, ' ms')} | |")
    lines.append(f"| proxy CPU per request, all rounds pooled, c10 (ms) | – | "
                 f"{m.cpu_pooled(10):.3f} | {h.cpu_pooled(10):.3f} | "
                 f"{h.cpu_pooled(10) - m.cpu_pooled(10):+.3f} ms "
                 f"({h.cpu_pooled(10) / m.cpu_pooled(10):.2f}×) | |")
    lines += [
        f"| RSS after start, idle (MB) | – | {_f(m.rss_start_mb, 1)} | {_f(h.rss_start_mb, 1)} | | "
        f"≤ {TARGETS['rss_start_mb']:.0f} {mark('rss')} |",
        f"| RSS after the first request (MB) | – | {_f(m.rss_first_mb, 1)} | "
        f"{_f(h.rss_first_mb, 1)} | | |",
        f"| peak RSS over the run (MB) | – | {_f(m.rss_peak_mb, 1)} | {_f(h.rss_peak_mb, 1)} | | |",
    ]
    if h.cold_starts:
        lines += [
            f"| cold start to first proxied response (s), median | – | {_f(m.cold_start_s)} | "
            f"{_f(h.cold_start_s)} | | ≤ {TARGETS['cold_start_s']} {mark('cold')} |",
            f"| cold start, best of {len(h.cold_starts)} (s) | – | {_f(min(m.cold_starts))} | "
            f"{_f(min(h.cold_starts))} | | |"]
    variants = [r for name, r in results.items() if name not in ("direct", *PROXIES)]
    if variants:
        lines += ["", "Other headroom builds in the same rounds (`--variant`), each against plain "
                  "mitmdump per round:", "",
                  "| build | requests/s ratio, c10 | CPU per request, c10 (ms) | CPU added, c10 "
                  "(ms) | CPU added, pooled (ms) | p50 added (ms) | p99 added (ms) | cold start "
                  "(s) |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for r in [h, *variants]:
            lines.append(
                f"| {r.name} | {_spread([a / b for a, b in zip(r.rps[10], m.rps[10])], 2, '×')} "
                f"| {_spread(r.cpu_ms[10], 3)} "
                f"| {_spread([a - b for a, b in zip(r.cpu_ms[10], m.cpu_ms[10])], 3)} "
                f"| {r.cpu_pooled(10) - m.cpu_pooled(10):+.3f} "
                f"| {_spread([a[0] - b[0] for a, b in zip(r.round_latency, m.round_latency)], 3)} "
                f"| {_spread([a[1] - b[1] for a, b in zip(r.round_latency, m.round_latency)], 3)} "
                f"| {_f(r.cold_start_s)} |")
    builds = [r for r in [h, *variants] if r.dispatch]
    if builds:
        lines += _dispatch_rows(builds)
    lines += [
        "",
        "headroom runs as `headroom proxy --no-cache` (otherwise the repeated request would be "
        "a response-cache hit), other options at their defaults (a console line per request, to "
        "a log file); plain mitmdump as `mitmdump --mode reverse:... --set flow_detail=0`. Cold "
        "start is spawn to the first 200 through the proxy, the CA already created. headroom's "
        "RSS after the first request includes the tiktoken o200k encoder, loaded by the first "
        "request's accounting (in a worker thread, after the response). Proxy CPU per request "
        "is the user + system time of the proxy process (all threads, from /proc/PID/stat) over "
        "a concurrency run, divided by its requests: on a 2-core machine the client, the fake "
        "provider and the proxy share the CPUs, so requests/s moves with whatever else runs, "
        "while CPU per request moves much less.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    # Many short rounds rather than a few long ones: on a shared machine the pairs of turns
    # compared within a round then see more nearly the same background load.
    parser.add_argument("--requests", type=int, default=200, help="latency requests per turn")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--rps-requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--cold-rounds", type=int, default=5, help="0: skip cold starts")
    parser.add_argument("--dispatch-rounds", type=int, default=40,
                        help="block pairs of the in-process measurement (0: skip it)")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--out", default=str(REPO / "bench-results" / "proxy.md"))
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=DIR",
                        help="also run headroom with PYTHONPATH=DIR, reported as NAME")
    args = parser.parse_args()
    variants = dict(v.split("=", 1) for v in args.variant)
    if args.quick:
        args.requests, args.warmup, args.rps_requests, args.rounds, args.cold_rounds = \
            100, 20, 300, 2, 1
        args.dispatch_rounds = min(args.dispatch_rounds, 6)
    args.load_before = os.getloadavg()[0]
    provider = Provider.fake()
    url = provider.url
    targets = ("direct", *PROXIES, *variants)
    results = {kind: Result(kind) for kind in targets}
    proxies = {}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            if args.cold_rounds:
                cold_starts(url, tmp, args.cold_rounds, results, variants)
            ports = {"direct": int(url.rsplit(":", 1)[1])}
            for kind in targets[1:]:
                ports[kind], proxies[kind] = start_for_load(kind, url, tmp, results[kind],
                                                            variants)
            pids = {kind: proxy.proc.pid for kind, proxy in proxies.items()}
            for r in range(args.rounds):
                load_round(r, targets, ports, pids, results, args)
            for kind, proxy in proxies.items():
                results[kind].rss_peak_mb = rss_mb(proxy.proc.pid)[1]
    finally:
        for proxy in proxies.values():
            proxy.stop()
        provider.stop()
    for kind in targets[2:] if args.dispatch_rounds else ():  # headroom and its variants
        results[kind].dispatch = dispatch_figures(kind, variants, args.dispatch_rounds)
    text = report(results, args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
