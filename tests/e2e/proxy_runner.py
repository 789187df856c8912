"""Start a real proxy process on a free loopback port and stop it by pid: the one runner of the
e2e, retrieval, forward and inspect suites (and the benchmark scripts).

Two ways, the two a user has: `mitmdump -s addons/headroom.py ...` and `headroom proxy ...`
(`headroom web` too, through `ProxyProcess`). Output goes to a log file (a pipe nobody reads would
stall the proxy once full).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
ADDON = REPO / "addons" / "headroom.py"
HEADROOM = str(BIN / "headroom")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment minus proxies, CA overrides and HEADROOM_* a developer may have set."""
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ssl_cert_file",
            "requests_ca_bundle", "curl_ca_bundle", "node_extra_ca_certs"}
    env = {k: v for k, v in os.environ.items()
           if k.lower() not in drop and not k.startswith(("HEADROOM_", "OPENAI_TARGET",
                                                          "ANTHROPIC_TARGET"))}
    env.update(extra)
    return env


class ProxyProcess:
    """A started proxy; `url` is where clients connect. Started means `ready_port` (by default
    `port`) accepts connections; see `wait_for_addons` for a proxy that also answers."""

    def __init__(self, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None,
                 timeout: float = 60.0, ready_port: int | None = None) -> None:
        self.argv, self.port, self.log = argv, port, log
        self.url = f"http://127.0.0.1:{port}"
        self._out = open(log, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env if env is not None else clean_env(), cwd=REPO)
        try:
            self._wait(port if ready_port is None else ready_port, timeout)
        except Exception:
            self.stop()
            raise

    def _wait(self, port: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"proxy exited with {self.proc.returncode}:\n{self.output()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{self.output()}")

    def output(self) -> str:
        self._out.flush()
        return self.log.read_text(errors="replace")[-6000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._out.close()


def wait_for_addons(url: str, timeout: float = 30.0) -> None:
    """The port opens before mitmproxy has loaded the script's addons: wait until headroom
    itself answers /health (a request sent earlier would bypass every addon)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", trust_env=False, timeout=2).json().get("status") == "healthy":
                return
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"headroom's addons did not answer /health at {url}")


def mitmdump(provider_url: str, log: Path, confdir: Path, sets: dict[str, str] | None = None,
             openai_prefix: str = "/openai", env: dict[str, str] | None = None) -> ProxyProcess:
    """`mitmdump -s addons/headroom.py` in reverse mode, both upstreams at the fake provider."""
    port = free_port()
    argv = [str(BIN / "mitmdump"), "-s", str(ADDON),
            "--mode", f"reverse:{provider_url}@{port}", "--listen-host", "127.0.0.1",
            "--set", "connection_strategy=lazy", "--set", "flow_detail=0",
            "--set", f"confdir={confdir}"]
    # A fresh state directory per process: no response-cache hits from earlier tests.
    # Forwarding tests repeat identical requests: the response cache is off unless a test
    # turns it on (sets={"headroom_cache": "true"}). Each option is passed once: mitmproxy
    # refuses a repeated --set of an addon's option when the script loads, and the addons
    # then never load (the proxy silently runs as plain mitmdump).
    options = {"headroom_data_dir": tempfile.mkdtemp(prefix="headroom-e2e-"),
               "headroom_cache": "false",
               "headroom_anthropic_api_url": provider_url,
               "headroom_openai_api_url": f"{provider_url}{openai_prefix}", **(sets or {})}
    for name, value in options.items():
        argv += ["--set", f"{name}={value}"]
    return ProxyProcess(argv, port, log, env)


def headroom_proxy(provider_url: str, log: Path, data_dir: Path, args: list[str] | None = None,
                   openai_prefix: str = "/openai", env: dict[str, str] | None = None) -> ProxyProcess:
    """`headroom proxy` with both upstreams at the fake provider."""
    port = free_port()
    argv = [HEADROOM, "proxy", "--port", str(port), "--data-dir", str(data_dir),
            "--anthropic-api-url", provider_url,
            "--openai-api-url", provider_url + openai_prefix, *(args or [])]
    # As for mitmdump above: the response cache is off unless the test's env turns it on.
    return ProxyProcess(argv, port, log, {"HEADROOM_CACHE": "false", **(env or {})})


def mitmdump_plain(provider_url: str, log: Path, confdir: Path) -> ProxyProcess:
    """Plain mitmdump reverse proxy without headroom: the benchmark's baseline."""
    port = free_port()
    argv = [str(BIN / "mitmdump"), "--mode", f"reverse:{provider_url}@{port}",
            "--listen-host", "127.0.0.1", "--set", "connection_strategy=lazy",
            "--set", "flow_detail=0", "--set", f"confdir={confdir}"]
    return ProxyProcess(argv, port, log)
