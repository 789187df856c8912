"""Opt-in semantic response cache (--semantic-cache): near-identical single-turn questions.

Only single-turn requests take part: one user message (plus system/developer instructions) and
nothing that refers to earlier state. Everything except the user's text — model, system, tools,
sampling parameters, tenant, endpoint — must match exactly: it is hashed into a "context" key.
Within a context, the stored questions' embeddings (all-MiniLM-L6-v2, normalised, cached by
content hash in `headroom_core.embeddings`) are compared with the new one; a cosine similarity
at or above the threshold answers with that question's entry in the exact `ResponseCache`.

The model takes seconds to load. Until it is loaded, lookups are misses and loading starts in
the background, so the event loop never waits for torch; `lookup`/`add` still cost a few ms of
CPU and belong in an executor. Any failure is a miss (fail open).
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Mapping, Sequence

from ..storage.base import StorageError
from ..wire.common import Endpoint
from .response_cache import CachedResponse, ResponseCache, cache_key

log = logging.getLogger(__name__)

NS = "semcache"
_CONTEXT_ROLES = ("system", "developer")

EmbedFn = Callable[[Sequence[str]], Sequence[Any]]


def _text_of(content: Any, part_types: tuple[str, ...]) -> str | None:
    if type(content) is str:
        return content
    if isinstance(content, list) and content:
        parts = []
        for p in content:
            if not isinstance(p, Mapping) or p.get("type") not in part_types or type(p.get("text")) is not str:
                return None  # an image, a document, a tool result: not a plain question
            parts.append(p["text"])
        return "\n".join(parts)
    return None


def single_turn(endpoint: Endpoint | str, doc: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the user's text, everything else) for a single-turn request; None for any other."""
    ep = getattr(endpoint, "value", str(endpoint))
    if ep in (Endpoint.ANTHROPIC_MESSAGES.value, Endpoint.OPENAI_CHAT.value):
        messages = doc.get("messages")
        if not isinstance(messages, list):
            return None
        context = [m for m in messages if isinstance(m, Mapping) and m.get("role") in _CONTEXT_ROLES]
        turns = [m for m in messages if not (isinstance(m, Mapping) and m.get("role") in _CONTEXT_ROLES)]
        if len(turns) != 1 or not isinstance(turns[0], Mapping) or turns[0].get("role") != "user":
            return None
        if ep == Endpoint.ANTHROPIC_MESSAGES.value and context:
            return None  # Anthropic has no system role inside messages
        text = _text_of(turns[0].get("content"), ("text",))
        rest = {k: v for k, v in doc.items() if k != "messages"}
        rest["context_messages"] = context
        return (text, rest) if text is not None else None
    if ep == Endpoint.OPENAI_RESPONSES.value:
        if doc.get("previous_response_id") or doc.get("conversation"):
            return None  # continues server-side state the cache cannot see
        items = doc.get("input")
        rest = {k: v for k, v in doc.items() if k != "input"}
        if type(items) is str:
            rest["context_messages"] = []
            return items, rest
        if not isinstance(items, list):
            return None
        context = [i for i in items if isinstance(i, Mapping) and i.get("role") in _CONTEXT_ROLES]
        turns = [i for i in items if not (isinstance(i, Mapping) and i.get("role") in _CONTEXT_ROLES)]
        if (len(turns) != 1 or not isinstance(turns[0], Mapping) or turns[0].get("role") != "user"
                or turns[0].get("type", "message") != "message"):
            return None
        text = _text_of(turns[0].get("content"), ("input_text",))
        rest["context_messages"] = context
        return (text, rest) if text is not None else None
    return None


def _default_embed() -> tuple[EmbedFn, Callable[[], bool]]:
    from .. import embeddings  # imports nothing heavy until a vector is needed

    def ready() -> bool:
        if embeddings.ready():
            return True
        embeddings.load_in_background()
        return False

    return embeddings.embed, ready


class SemanticCache:
    """Near-duplicate lookup in front of an exact `ResponseCache` (which holds the answers)."""

    def __init__(self, cache: ResponseCache, threshold: float, *, embed: EmbedFn | None = None,
                 per_context: int = 64) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError("semantic cache threshold must lie in (0, 1]")
        self.cache = cache
        self.storage = cache.storage
        self.threshold = threshold
        self.per_context = per_context
        if embed is None:
            self._embed, self._ready = _default_embed()
        else:
            self._embed, self._ready = embed, lambda: True

    def _context_key(self, tenant: str, endpoint: Endpoint | str, rest: dict[str, Any]) -> str:
        return cache_key(tenant, endpoint, {"semantic-context": rest})

    def _bucket(self, ctx: str) -> tuple[list[str], Any]:
        import numpy as np

        raw = self.storage.get(NS, ctx)
        if not raw:
            return [], None
        head, _, vectors = raw.partition(b"\n")
        keys = json.loads(head)
        matrix = np.frombuffer(vectors, dtype=np.float32).reshape(len(keys), -1)
        return keys, matrix

    def lookup(self, tenant: str, endpoint: Endpoint | str, doc: Mapping[str, Any]) -> CachedResponse | None:
        """The answer to a stored question similar enough to this one, or None."""
        turn = single_turn(endpoint, doc)
        if turn is None or not self._ready():
            return None
        text, rest = turn
        try:
            keys, matrix = self._bucket(self._context_key(tenant, endpoint, rest))
            if not keys:
                return None
            import numpy as np

            query = np.asarray(self._embed([text])[0], dtype=np.float32)
            scores = matrix @ query
            best = int(scores.argmax())
            if float(scores[best]) < self.threshold:
                return None
            return self.cache.lookup(keys[best])
        except (StorageError, ValueError, TypeError) as e:
            log.warning("semantic cache lookup failed, treating as a miss: %s", e)
        except Exception as e:  # the model itself failing (EmbeddingsUnavailable, torch errors)
            log.warning("semantic cache unavailable: %s", e)
        return None

    def add(self, tenant: str, endpoint: Endpoint | str, doc: Mapping[str, Any], key: str) -> None:
        """Remember this request's question, answered by exact-cache entry `key`.

        Call after `ResponseCache.store(key, ...)`. The bucket update is read-modify-write:
        two concurrent adds may lose one question, which only costs a future miss.
        """
        turn = single_turn(endpoint, doc)
        if turn is None or not self._ready():
            return
        text, rest = turn
        try:
            import numpy as np

            ctx = self._context_key(tenant, endpoint, rest)
            keys, matrix = self._bucket(ctx)
            vec = np.asarray(self._embed([text])[0], dtype=np.float32).reshape(1, -1)
            if key in keys:
                return
            keys = (keys + [key])[-self.per_context:]
            matrix = vec if matrix is None else np.vstack([matrix, vec])[-self.per_context:]
            value = json.dumps(keys).encode() + b"\n" + matrix.astype(np.float32).tobytes()
            self.storage.set(NS, ctx, value, ttl=self.cache.ttl or None)
        except Exception as e:
            log.warning("semantic cache add skipped: %s", e)
