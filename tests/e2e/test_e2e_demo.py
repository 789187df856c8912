"""`headroom demo` (what `make demo` runs) works from the venv without a key or a network: it
starts its fake provider and the proxy on loopback, prints the table of savings, stops
everything and exits 0."""

from __future__ import annotations

import re
import subprocess

import pytest

from proxy_runner import BIN, clean_env

pytestmark = pytest.mark.e2e


def test_headroom_demo_prints_savings_and_exits_0(tmp_path):
    env = clean_env(HOME=str(tmp_path), COLUMNS="160", HEADROOM_OPTIMIZE="false")
    proc = subprocess.run([str(BIN / "headroom"), "demo"], capture_output=True, text=True,
                          timeout=180, env=env, cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    # One row per tool output, compressed ones and the exact outputs left alone.
    for label in ("incident log", "issue tracker JSON", "code search", "test run",
                  "file read (Read)", "git status"):
        assert label in out
    assert "untouched: exact-output tool Read" in out
    assert "headroom_retrieve" in out
    rows = re.findall(r"│ *([\d,]+) │ *([\d,]+) │ *(\d+)% │", out)
    assert len(rows) == 6
    saved = [int(pct) for _, _, pct in rows]
    assert max(saved) >= 90 and saved.count(0) == 2  # the two exact outputs
    total = re.search(r"Whole requests: ([\d,]+) → ([\d,]+) tokens \((\d+)% saved\)", out)
    assert total and int(total.group(3)) >= 50  # a user's HEADROOM_OPTIMIZE=false is ignored
    assert not list(tmp_path.glob(".headroom*"))  # its state lived in a temporary directory
