"""Start `headroom proxy` / `headroom web` as a real process on free loopback ports; stop by pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HEADROOM = str(Path(sys.executable).with_name("headroom"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s:\n{log.read_text()[-4000:]}")


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without proxy or CA variables a developer may have set."""
    drop = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ssl_cert_file",
            "requests_ca_bundle", "curl_ca_bundle", "node_extra_ca_certs"}
    env = {k: v for k, v in os.environ.items() if k.lower() not in drop and
           not k.startswith("HEADROOM_")}
    env.update(extra)
    return env


class Process:
    """A started `headroom ...` command; `stop()` sends SIGTERM to its pid, then SIGKILL."""

    def __init__(self, argv: list[str], log: Path, wait_port: int, env: dict[str, str] | None = None,
                 timeout: float = 60) -> None:
        self.log = log
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                     env=env if env is not None else clean_env())
        try:
            wait_listening(wait_port, self.proc, log, timeout)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=15)
        self._out.close()
