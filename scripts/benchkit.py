"""What the proxy benchmarks share: starting proxies and providers as processes, a cheap
keep-alive HTTP/1.1 client, the proxy's CPU and memory from /proc, interleaved rounds.

Used by bench_proxy.py and bench_retrieval.py. The client is a plain socket on purpose: on a
2-core machine the load generator competes with the proxy for CPU, so it must cost little.
"""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for _p in (REPO / "tests" / "e2e", REPO / "tests", REPO):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from proxy_runner import ProxyProcess, clean_env, free_port  # noqa: E402,F401  (re-exported)

BIN = Path(sys.executable).parent
ADDON = REPO / "addons" / "headroom.py"


# --- processes ---------------------------------------------------------------------------------

def mitmdump_argv(provider_url: str, port: int, confdir: Path,
                  headroom_sets: dict[str, str] | None = None) -> list[str]:
    """Plain mitmdump in reverse mode; with `headroom_sets`, `-s addons/headroom.py` and
    those `headroom_*` options as well."""
    argv = [str(BIN / "mitmdump"), "--mode", f"reverse:{provider_url}@{port}",
            "--listen-host", "127.0.0.1", "--set", "connection_strategy=lazy",
            "--set", "flow_detail=0", "--set", f"confdir={confdir}"]
    if headroom_sets is not None:
        argv[1:1] = ["-s", str(ADDON)]
        for name, value in headroom_sets.items():
            argv += ["--set", f"{name}={value}"]
    return argv


def start_proxy(argv: list[str], port: int, log: Path,
                env: dict[str, str] | None = None) -> ProxyProcess:
    """Spawn a proxy and wait until its port accepts connections (its log on failure)."""
    return ProxyProcess(argv, port, log, env if env is not None else clean_env())


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it is still there after 15 s."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)


def wait_for_headroom(port: int, timeout: float = 60.0) -> None:
    """The port opens before mitmproxy has loaded the script: wait until /health answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                if b'"healthy"' in s.recv(65536):
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("headroom's addons never answered /health")


class Provider:
    """A fake provider in its own process: `argv` prints its URL on the first line of stdout,
    then serves until its stdin closes."""

    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()
        if not self.url:
            self.proc.wait(15)
            raise RuntimeError(f"the provider exited ({self.proc.returncode}) without a URL")

    @classmethod
    def fake(cls) -> "Provider":
        """tests/fake_provider.py with its default replies."""
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from fake_provider import FakeProvider;"
                "p = FakeProvider().start(); print(p.url, flush=True); sys.stdin.read(); p.stop()")
        return cls([sys.executable, "-c", code, str(REPO / "tests")])

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(15)


# --- /proc -------------------------------------------------------------------------------------

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


# --- a keep-alive HTTP/1.1 client --------------------------------------------------------------

@dataclass(frozen=True)
class Exchange:
    status: int
    head: bytes
    body: bytes  # de-chunked
    first_s: float  # seconds to the first byte of `first_marker` (else of the body)
    total_s: float  # seconds to the end of the response


def _content_length(head: bytes) -> int | None:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    return None


class KeepAliveClient:
    """One connection, one request at a time; responses with content-length or chunked."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _more(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed mid-response")
        self.buf += data

    def exchange(self, request: bytes, first_marker: bytes | None = None) -> Exchange:
        t0 = time.perf_counter()
        self.sock.sendall(request)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        first = None
        length = _content_length(head)
        if length is not None:
            while len(self.buf) < length:
                self._more()
            body, self.buf = self.buf[:length], self.buf[length:]
            first = time.perf_counter()
        else:  # chunked
            parts = []
            while True:
                while b"\r\n" not in self.buf:
                    self._more()
                size_line, _, rest = self.buf.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                while len(rest) < size + 2:
                    self._more()
                    size_line, _, rest = self.buf.partition(b"\r\n")
                parts.append(rest[:size])
                self.buf = rest[size + 2:]
                if first is None and (first_marker is None or first_marker in b"".join(parts)):
                    first = time.perf_counter()
                if size == 0:
                    break
            body = b"".join(parts)
        end = time.perf_counter()
        return Exchange(int(head.split(b" ", 2)[1]), head, body, (first or end) - t0, end - t0)

    def close(self) -> None:
        self.sock.close()


# --- load ----------------------------------------------------------------------------------------

def latency(port: int, request: bytes, n: int, warmup: int) -> list[float]:
    """Milliseconds per request, sequential on one keep-alive connection (200s only)."""
    client = KeepAliveClient(port)
    try:
        out = []
        for i in range(warmup + n):
            ex = client.exchange(request)
            if ex.status != 200:
                raise RuntimeError(f"status {ex.status}")
            if i >= warmup:
                out.append(ex.total_s * 1000)
        return out
    finally:
        client.close()


async def _worker(port: int, request: bytes, count: list[int], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while count[0] > 0:
            count[0] -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head) or 0)
            if not head.startswith(b"HTTP/1.1 200"):
                errors[0] += 1
    finally:
        writer.close()


async def throughput(port: int, request: bytes, concurrency: int, total: int) -> float:
    """Requests per second: `total` requests over `concurrency` keep-alive connections
    (responses must carry content-length)."""
    count, errors = [total], [0]
    t0 = time.perf_counter()
    await asyncio.gather(*[_worker(port, request, count, errors) for _ in range(concurrency)])
    elapsed = time.perf_counter() - t0
    if errors[0]:
        raise RuntimeError(f"{errors[0]} non-200 responses")
    return total / elapsed


# --- rounds and figures ------------------------------------------------------------------------

def round_order(names: Sequence[str], r: int) -> list[str]:
    """The order of round `r`: reversed every other round (ABBA), so slow drift of a shared
    machine and any first-or-second effect fall on all alike."""
    return list(names) if r % 2 == 0 else list(reversed(names))


def interleaved(names: Sequence[str], rounds: int) -> Iterator[tuple[int, str]]:
    """(round, name): every name once per round, in round_order."""
    for r in range(rounds):
        for name in round_order(names, r):
            yield r, name


def pct(values: Sequence[float], q: float) -> float:
    """The q-quantile (nearest rank) of `values`."""
    data = sorted(values)
    return data[min(len(data) - 1, max(0, round(q * (len(data) - 1))))]


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max)."""
    return statistics.median(values), min(values), max(values)
