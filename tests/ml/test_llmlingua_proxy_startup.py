"""LLMLingua-2 end to end (issue 8), start-up feedback: the package missing or broken, a bad
model path, the option off. Each time the words a user reads, and a proxy that runs and forwards;
with the option off, no torch in the proxy's process.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

# lingua_proxy first: it puts tests/e2e and scripts on sys.path for the imports below
from lingua_proxy import (AVAILABLE, MISSING, ROOT, base_env, conversation, env, lingua_state,  # noqa: F401
                          maps, post, provider, rss_mb, tool_results, wait_for_output)

from fake_provider import FakeProvider
from proxy_runner import ProxyProcess, headroom_proxy, mitmdump

pytestmark = [pytest.mark.ml, pytest.mark.e2e]

HIDE_LLMLINGUA = '''
import importlib.abc, sys

class _NoLLMLingua(importlib.abc.MetaPathFinder):
    """As if the llmlingua package were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name == "llmlingua" or name.startswith("llmlingua."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoLLMLingua())
'''


def _start_plain(provider, env, tmp: Path, args: list[str], runner: str = "headroom",
                 **extra_env: str) -> ProxyProcess:
    env = {**env, **extra_env}
    if runner == "headroom":
        return headroom_proxy(provider.url, tmp / "proxy.log", tmp / "data", args, env=env)
    sets = {"headroom_data_dir": str(tmp / "data")}
    for flag in args:  # only --llmlingua here
        sets["headroom_" + flag.lstrip("-").replace("-", "_")] = "true"
    return mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir", sets=sets, env=env)


def _forwards_untouched(proxy: ProxyProcess, provider: FakeProvider, text: str) -> None:
    provider.reset()
    post(proxy, conversation([("fetch_notes", text)]))
    assert tool_results(provider.requests[-1].body) == [text]


@pytest.mark.parametrize("runner", ["headroom", "mitmdump"])
def test_missing_package_warns_and_the_proxy_forwards(runner, provider, base_env, tmp_path,
                                                      make_prose):
    """Runs without the extra too (where the package really is missing)."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_LLMLINGUA)
    proxy = _start_plain(provider, base_env, tmp_path, ["--llmlingua"], runner,
                         PYTHONPATH=str(hide))
    try:
        # headroom proxy: in its banner, then from the addon; plain mitmdump: from the addon
        wait_for_output(proxy, MISSING, count=2 if runner == "headroom" else 1)
        assert lingua_state(proxy) == "not installed"
        _forwards_untouched(proxy, provider, make_prose(14, seed=501))
        assert "torch" not in maps(proxy)
    finally:
        proxy.stop()


def test_broken_package_is_reported_and_the_proxy_forwards(provider, env, tmp_path, make_prose,
                                                           tiny_model_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "llmlingua.py").write_text('raise ImportError("llmlingua is broken here")\n')
    proxy = _start_plain(provider, env, tmp_path, ["--llmlingua", "--llmlingua-model",
                                                   str(tiny_model_dir)], PYTHONPATH=str(broken))
    try:
        out = wait_for_output(proxy, "LLMLingua: model failed to load")
        assert ("llmlingua could not be imported (llmlingua is broken here); "
                "pip install 'headroom-proxy[llmlingua]'") in out
        assert lingua_state(proxy).startswith("failed (ModuleNotFoundError: llmlingua could not")
        _forwards_untouched(proxy, provider, make_prose(14, seed=502))
    finally:
        proxy.stop()


def test_bad_model_path_is_reported_and_the_proxy_forwards(provider, env, tmp_path, make_prose):
    bad = tmp_path / "no-such-dir" / "bert-base-multilingual-cased"
    proxy = _start_plain(provider, env, tmp_path, ["--llmlingua", "--llmlingua-model", str(bad)])
    try:
        out = wait_for_output(proxy, "LLMLingua: model failed to load")
        assert (f"LLMLingua: model failed to load (FileNotFoundError: model directory not found: "
                f"{bad}); requests pass without it") in out
        assert lingua_state(proxy) == f"failed (FileNotFoundError: model directory not found: {bad})"
        _forwards_untouched(proxy, provider, make_prose(14, seed=503))
    finally:
        proxy.stop()


def test_off_says_available_and_never_imports_torch(provider, env, tmp_path, make_prose):
    if importlib.util.find_spec("llmlingua") is None:
        pytest.skip("llmlingua is not installed")
    proxy = _start_plain(provider, env, tmp_path, [])
    try:
        assert AVAILABLE in proxy.output()
        assert lingua_state(proxy) == "off"
        _forwards_untouched(proxy, provider, make_prose(14, seed=504))  # through the optimiser
        assert "torch" not in maps(proxy)  # no torch library mapped: never imported
        # headroom on mitmproxy is ~155 MB here; importing torch alone adds ~210 MB
        assert rss_mb(proxy) < 300
    finally:
        proxy.stop()


def test_the_banner_resolves_the_device_only_when_on(ml_installed):
    """`headroom proxy` prints its banner before it execs mitmdump: torch only if asked for."""
    probe = ("import io, sys\n"
             "from headroom_core.console import print_banner\n"
             "from headroom_core.settings import Settings\n"
             "out = io.StringIO()\n"
             "print_banner(Settings(llmlingua=sys.argv[1] == 'on', llmlingua_rate='0.5'), '0', out)\n"
             "print('torch' in sys.modules)\n"
             "print(out.getvalue())\n")
    runs = {}
    for flag in ("off", "on"):
        proc = subprocess.run([sys.executable, "-c", probe, flag], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        runs[flag] = proc.stdout
    assert runs["off"].startswith("False\n") and AVAILABLE in runs["off"]
    assert runs["on"].startswith("True\n") and "LLMLingua: ENABLED (device=" in runs["on"]
    assert ", rate=0.5)" in runs["on"]
