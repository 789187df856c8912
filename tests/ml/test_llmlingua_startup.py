"""Start-up feedback and the missing-package path: the exact banner lines, no heavy imports."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from headroom_core.ml import llmlingua as lingua
from headroom_core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
MISSING = ("WARNING: LLMLingua requested but not installed. "
           "Install with: pip install 'headroom-proxy[llmlingua]'")
AVAILABLE = "LLMLingua: available (enable with --llmlingua for ML compression)"


def _hide(monkeypatch, hidden: str) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == hidden else real(name, *a))


def test_enabled_names_the_device_and_rate():
    if not lingua.is_installed():
        pytest.skip("the llmlingua extra is not installed")
    settings = Settings(llmlingua=True, llmlingua_rate="0.3")
    assert lingua.startup_message(settings, device="cuda") == (
        "info", "LLMLingua: ENABLED (device=cuda, rate=0.3)")
    settings = Settings(llmlingua=True, llmlingua_rate="0.5", llmlingua_device="cpu")
    assert lingua.startup_message(settings) == ("info", "LLMLingua: ENABLED (device=cpu, rate=0.5)")


@pytest.mark.ml
def test_enabled_with_auto_resolves_the_device():
    if not lingua.is_installed():
        pytest.skip("the llmlingua extra is not installed")
    import torch

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert lingua.startup_message(Settings(llmlingua=True)) == (
        "info", f"LLMLingua: ENABLED (device={expected}, rate=0.3)")


def test_available_when_installed_but_off():
    if not lingua.is_installed():
        pytest.skip("the llmlingua extra is not installed")
    assert lingua.startup_message(Settings()) == ("info", AVAILABLE)


@pytest.mark.parametrize("hidden", ["llmlingua", "torch", "transformers"])
def test_requested_but_missing_warns(monkeypatch, hidden):
    _hide(monkeypatch, hidden)
    assert not lingua.is_installed()
    assert lingua.startup_message(Settings(llmlingua=True)) == ("warning", MISSING)
    level, text = lingua.startup_message(Settings())
    assert level == "debug" and "not installed" in text


_HIDDEN_RUN = r"""
import asyncio, importlib.abc, json, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "llmlingua" or name.startswith("llmlingua."):
            raise ModuleNotFoundError(name)
        return None

sys.meta_path.insert(0, Hide())
from headroom_core.ml.llmlingua import LLMLinguaService, startup_message
from headroom_core.settings import Settings

heavy_after_import = sorted(m for m in ("torch", "transformers", "llmlingua") if m in sys.modules)
level, text = startup_message(Settings(llmlingua=True))
service = LLMLinguaService("microsoft/llmlingua-2-xlm-roberta-large-meetingbank", "auto", 0.3,
                           progress=lambda m: None)
service.start_loading()
service.wait_loaded(60)
result = asyncio.run(service.compress("some prose that would be compressed"))
print(json.dumps({"heavy": heavy_after_import, "level": level, "text": text,
                  "ready": service.ready, "error": service.load_error, "result": result}))
"""


def test_missing_package_in_a_fresh_process():
    """With llmlingua hidden: the warning, a service that is simply not ready, and no torch import."""
    proc = subprocess.run([sys.executable, "-c", _HIDDEN_RUN], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert (out["level"], out["text"]) == ("warning", MISSING)
    assert out["ready"] is False and "not installed" in out["error"]
    assert out["result"] is None


@pytest.mark.ml
def test_explicit_device_torch_cannot_see_is_reported():
    if not lingua.is_installed():
        pytest.skip("the llmlingua extra is not installed")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    level, text = lingua.startup_message(Settings(llmlingua=True, llmlingua_device="cuda"))
    assert level == "warning" and "no CUDA device" in text
