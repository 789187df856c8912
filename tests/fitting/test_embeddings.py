"""The shared lazy MiniLM loader: nothing heavy at import, offline loading, a content-hash cache."""

from __future__ import annotations

import subprocess
import sys

import pytest

from headroom_core import embeddings


def test_importing_headroom_fitting_imports_no_torch():
    code = ("import sys, headroom_core.embeddings as e, headroom_core.fitting.manager, "
            "headroom_core.fitting.compress_first; e.available(); "
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_unavailable_model_directory_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(embeddings, "_model", None)
    monkeypatch.setattr(embeddings, "_load_error", None)
    monkeypatch.setenv(embeddings.MODEL_ENV, str(tmp_path / "missing"))
    if not embeddings.available():
        pytest.skip("sentence-transformers is not installed")
    with pytest.raises(embeddings.EmbeddingsUnavailable):
        embeddings.load()
    assert not embeddings.available()  # the failure is remembered: no retry on every request


@pytest.mark.ml
def test_embed_offline_normalised_and_cached():
    if not embeddings.available():
        pytest.skip("the semantic extra is not installed")
    embeddings.load()
    assert embeddings.ready()
    texts = ["the header parser drops folded lines", "invoice totals are rounded",
             "the HTTP header parser loses continuation lines"]
    vectors = embeddings.embed(texts)
    assert all(abs(float(v @ v) - 1.0) < 1e-4 for v in vectors)
    assert float(vectors[0] @ vectors[2]) > float(vectors[0] @ vectors[1])
    assert embeddings.cached(texts[1]) is vectors[1]
    assert embeddings.embed([texts[1]])[0] is vectors[1]  # served from the cache
