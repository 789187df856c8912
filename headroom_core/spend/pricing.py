"""Model prices (USD per million tokens) and the cost of one request from the provider's usage.

The built-in table is `headroom_core/data/pricing.json`; `--pricing-file` merges a file of the
same shape over it. A model id is looked up exactly, then by its longest listed prefix that ends
at a word boundary (`claude-sonnet-4-5-20250929` → `claude-sonnet-4-5`, `gpt-4o-mini-2024-07-18`
→ `gpt-4o-mini`), then with a platform prefix removed (`us.anthropic.…`, `openai/…`). An unknown
model costs the configured default price and is logged once.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..usage import Usage

log = logging.getLogger(__name__)

PER_TOKEN = 1e-6  # prices are per million tokens
# Output assumed by `estimate` when the request sets no max_tokens: a long answer, not the worst
# case (a reasoning model may write more; the settle step charges what really happened).
DEFAULT_OUTPUT_ESTIMATE = 4096
# Ratios used when a price entry (or the default price) omits the cache prices: Anthropic's
# 5-minute write surcharge and read discount, the costlier of the two providers' conventions.
CACHE_READ_RATIO = 0.1
CACHE_WRITE_RATIO = 1.25
_MEMO_LIMIT = 4096


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float

    @classmethod
    def from_pair(cls, input_usd: float, output_usd: float) -> "ModelPrice":
        return cls(input_usd, output_usd, input_usd * CACHE_READ_RATIO,
                   input_usd * CACHE_WRITE_RATIO)

    @classmethod
    def from_json(cls, model: str, entry: Any) -> "ModelPrice":
        if not isinstance(entry, Mapping):
            raise ValueError(f"pricing: entry for {model!r} must be an object")
        try:
            base = cls.from_pair(float(entry["input"]), float(entry["output"]))
            return cls(base.input, base.output,
                       float(entry.get("cache_read", base.cache_read)),
                       float(entry.get("cache_write", base.cache_write)))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"pricing: entry for {model!r} needs numeric input and output: {e}")


def _read_table(text: str, origin: str) -> dict[str, ModelPrice]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"pricing file {origin}: not JSON: {e}") from None
    models = doc.get("models") if isinstance(doc, dict) else None
    if not isinstance(models, dict):
        raise ValueError(f"pricing file {origin}: expected {{\"models\": {{id: prices}}}}")
    return {k.lower(): ModelPrice.from_json(k, v) for k, v in models.items()}


def builtin_table() -> dict[str, ModelPrice]:
    text = resources.files("headroom_core").joinpath("data/pricing.json").read_text("utf-8")
    return _read_table(text, "built-in pricing.json")


class Pricing:
    """A price table with the lookup rules above; safe to share between threads."""

    def __init__(self, table: Mapping[str, ModelPrice], default: ModelPrice) -> None:
        self._table = {k.lower(): v for k, v in table.items()}
        # Longest first, so the first boundary match is the longest known prefix.
        self._prefixes = sorted(self._table, key=len, reverse=True)
        self.default = default
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._resolved: dict[str, ModelPrice | None] = {}

    @classmethod
    def load(cls, path: str | None, default_price: tuple[float, float]) -> "Pricing":
        """The built-in table, with the entries of `path` (if given) replacing or adding models."""
        table = builtin_table()
        if path:
            table.update(_read_table(Path(path).expanduser().read_text("utf-8"), path))
        return cls(table, ModelPrice.from_pair(*default_price))

    def _find(self, model: str) -> ModelPrice | None:
        name = model.strip().lower()
        candidates = [name]
        if "/" in name:  # openai/gpt-4o, models/claude-...
            candidates.append(name.rsplit("/", 1)[1])
        if "anthropic." in name:  # Bedrock: us.anthropic.claude-3-5-haiku-20241022-v1:0
            candidates.append(name.split("anthropic.", 1)[1])
        for cand in candidates:
            if cand in self._table:
                return self._table[cand]
            for prefix in self._prefixes:
                if cand.startswith(prefix) and not cand[len(prefix)].isalnum():
                    return self._table[prefix]
        return None

    def price(self, model: str) -> tuple[ModelPrice, bool]:
        """(price, known): the model's price, or the default price and False."""
        with self._lock:
            if model in self._resolved:
                found = self._resolved[model]
            else:
                if len(self._resolved) >= _MEMO_LIMIT:  # model ids come from clients: bound it
                    self._resolved.clear()
                found = self._resolved[model] = self._find(model)
            if found is None and model not in self._warned and len(self._warned) < _MEMO_LIMIT:
                self._warned.add(model)
                log.warning("no price for model %r: using the default price %.2f/%.2f USD per "
                            "million input/output tokens (set --pricing-file)", model,
                            self.default.input, self.default.output)
        return (found, True) if found is not None else (self.default, False)

    def cost(self, model: str, usage: "Usage") -> tuple[float, bool]:
        """(USD, known) for the provider's reported usage (uncached input, output, cache r/w)."""
        p, known = self.price(model)
        usd = (usage.input_tokens * p.input + usage.output_tokens * p.output
               + usage.cache_read_tokens * p.cache_read
               + usage.cache_write_tokens * p.cache_write) * PER_TOKEN
        return usd, known

    def estimate(self, model: str, input_tokens: int, max_output_tokens: int | None) -> float:
        """An upper-leaning estimate before the request goes out, for budget reservations.

        Input is priced at the dearer of plain input and cache write (a request may write its
        whole prompt to the cache); output at `max_output_tokens`, or DEFAULT_OUTPUT_ESTIMATE.
        """
        p, _ = self.price(model)
        out = DEFAULT_OUTPUT_ESTIMATE if max_output_tokens is None else max(0, max_output_tokens)
        return (max(0, input_tokens) * max(p.input, p.cache_write) + out * p.output) * PER_TOKEN
