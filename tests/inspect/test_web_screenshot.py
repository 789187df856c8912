"""`headroom web` end to end, looked at by a headless Chromium: an optimised flow, its comment.

Chromium is Debian's `chromium` package. Missing locally: skipped; missing with CI=true: failed.
The screenshots are kept under $HEADROOM_SCREENSHOT_DIR when set (else the test's tmp dir).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from mitmproxy.version import VERSION

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from proxy_runner import HEADROOM, ProxyProcess, clean_env, free_port  # noqa: E402

from fake_provider import FakeProvider  # noqa: E402  (tests/ is on sys.path)

pytestmark = pytest.mark.e2e

MITMPROXY_MAJOR = int(VERSION.split(".")[0])
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI") == "true":
        pytest.fail("chromium is not installed (apt-get install -y chromium)")
    pytest.skip("chromium is not installed (apt-get install -y chromium)")


def agent_request() -> bytes:
    rows = [{"id": i, "file": f"src/pkg/module_{i}.py", "line": 10 + i, "severity": "info",
             "message": "unused import removed"} for i in range(400)]
    rows[137] = {"id": 137, "file": "src/pkg/core.py", "line": 88, "severity": "error",
                 "message": "TypeError: unsupported operand type(s)"}
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 256, "messages": [
        {"role": "user", "content": "Lint the package and fix what fails."},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_lint", "name": "lint", "input": {"path": "src"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_lint", "content": json.dumps(rows)}]},
    ]}
    return json.dumps(doc).encode()


def screenshot(browser: str, url: str, out: Path, profile: Path) -> subprocess.Popen:
    """Start chromium headless; the caller waits on and stops it by pid."""
    return subprocess.Popen(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         f"--screenshot={out}", "--window-size=1600,900", "--virtual-time-budget=5000", url],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean_env())


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()  # by pid: only the process this test started
    proc.wait(timeout=15)


def test_mitmweb_shows_the_optimised_flow_and_its_comment(tmp_path):
    browser = chromium()
    shots = Path(os.environ.get("HEADROOM_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(8)
    # mitmweb 12 asks for a token (?token=); 11 has no such option and ignores the parameter.
    auth = ["--", "--set", f"web_password={token}"] if MITMPROXY_MAJOR >= 12 else []
    with FakeProvider() as provider:
        port, web_port, forward_port = free_port(), free_port(), free_port()
        web = ProxyProcess([HEADROOM, "web", "--no-browser", "--port", str(port),
                            "--forward", "--forward-port", str(forward_port),
                            "--web-port", str(web_port), "--anthropic-api-url", provider.url,
                            "--data-dir", str(tmp_path / "data"), "--min-tokens", "50",
                            "--no-cache", *auth],
                           port, tmp_path / "web.log", ready_port=web_port)
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/v1/messages", content=agent_request(),
                           headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01",
                                    "content-type": "application/json"}, timeout=60)
            assert r.status_code == 200
            forwarded = provider.requests[-1].body
            api = f"http://127.0.0.1:{web_port}"
            flows = []
            for _ in range(50):  # the annotation lands with the response hook
                flows = httpx.get(f"{api}/flows", params={"token": token}, timeout=10).json()
                if flows and flows[-1].get("comment"):
                    break
                time.sleep(0.1)
            (flow,) = flows
            comment = flow["comment"]
            assert len(forwarded) < len(agent_request())  # headroom optimised it
            assert comment.startswith("-") and "→" in comment and " tok" in comment
            assert flow["marked"]

            # the UI's own port is refused through the proxy
            with httpx.Client(proxy=f"http://127.0.0.1:{forward_port}", trust_env=False) as c:
                refused = c.get(f"{api}/flows", params={"token": token}, timeout=10)
            assert refused.status_code == 403 and b"web UI" in refused.content

            outputs = {}
            for tab in ("request", "comment"):
                out = shots / f"mitmweb-{tab}.png"
                out.unlink(missing_ok=True)
                proc = screenshot(browser, f"{api}/?token={token}#/flows/{flow['id']}/{tab}",
                                  out, tmp_path / f"profile-{tab}")
                try:
                    proc.wait(timeout=90)
                finally:
                    stop(proc)
                outputs[tab] = out
        finally:
            web.stop()
    for out in outputs.values():
        data = out.read_bytes()
        assert data.startswith(PNG_MAGIC)
        assert len(data) > 20_000  # a rendered UI, not a blank page (~5 kB)
