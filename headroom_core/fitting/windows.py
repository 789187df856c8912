"""Context windows per model, and the output reserve a request asks for.

The built-in table is `data/model_limits.json`; `--model-limits FILE` overrides or extends it
(same shape, or a flat `{"model-or-prefix": window}` object; a matching override wins over every
built-in entry). Ids match by their longest known prefix, so dated ids (`claude-3-5-sonnet-20241022`, `gpt-4o-2024-08-06`) find their family;
gateway spellings (`openai/gpt-4o`, `us.anthropic.claude-sonnet-4-…-v1:0`, `…@20240620`) are
reduced to the bare id first. Unknown models get `--default-context-window`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any, Mapping

from ..jsonfmt import JsonNumber

_BETA_HEADER = "anthropic-beta"
# Region and vendor prefixes of Bedrock / Vertex ids: "us.anthropic.claude-…", "anthropic.claude-…".
_VENDOR_PREFIX = re.compile(r"^(?:(?:us|eu|apac|global)\.)?(?:anthropic|openai)\.")


@dataclass(frozen=True)
class ModelLimit:
    """What fitting needs to know about one model in one request."""

    window: int  # tokens the provider accepts, input plus output
    count_scale: float  # multiply our o200k counts by this before comparing with `window`


def bare_model_id(model: str) -> str:
    """`openai/gpt-4o` → `gpt-4o`; `us.anthropic.claude-x-v1:0` → `claude-x-v1:0`; lower-cased."""
    bare = model.strip().lower().rsplit("/", 1)[-1]
    bare = bare.split("@", 1)[0]  # Vertex: claude-3-5-sonnet@20240620
    return _VENDOR_PREFIX.sub("", bare)


def _longest_prefix(table: Mapping[str, Any], model: str) -> Any:
    best = None
    for prefix, value in table.items():
        if model.startswith(prefix) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, value)
    return None if best is None else best[1]


def _load_builtin() -> dict[str, Any]:
    text = resources.files("headroom_core").joinpath("data/model_limits.json").read_text("utf-8")
    return json.loads(text)


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"--model-limits: window of {name!r} must be a number, got {value!r}")
    try:
        number = int(float(value))
    except ValueError:
        raise ValueError(f"--model-limits: window of {name!r} must be a number, got {value!r}")
    if number <= 0:
        raise ValueError(f"--model-limits: window of {name!r} must be positive, got {value!r}")
    return number


class ModelWindows:
    """Resolves a model id (plus beta headers) to its `ModelLimit`."""

    def __init__(self, overrides_path: str = "", default_window: int = 128000) -> None:
        data = _load_builtin()
        self._windows: dict[str, int] = {k.lower(): int(v) for k, v in data["windows"].items()}
        self._scales: dict[str, float] = {k.lower(): float(v) for k, v in data["count_scale"].items()}
        self._betas: dict[str, tuple[int, tuple[str, ...]]] = {
            name.lower(): (int(spec["window"]), tuple(m.lower() for m in spec["models"]))
            for name, spec in data["beta_windows"].items()
        }
        self.default_window = default_window
        # Overrides are matched before the built-in table: `{"claude-": 100000}` covers every
        # Claude model, although the built-ins know longer prefixes.
        self._override_windows: dict[str, int] = {}
        if overrides_path:
            self._apply_overrides(overrides_path)

    def _apply_overrides(self, path: str) -> None:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"--model-limits: cannot read {path}: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(f"--model-limits: {path} must hold a JSON object")
        windows = data.get("windows", data if "count_scale" not in data else {})
        for name, value in windows.items():
            if not name.startswith("_"):
                self._override_windows[name.lower()] = _positive_int(name, value)
        for name, value in data.get("count_scale", {}).items():
            self._scales[name.lower()] = float(value)
        for name, spec in data.get("beta_windows", {}).items():
            self._betas[name.lower()] = (_positive_int(name, spec["window"]),
                                         tuple(m.lower() for m in spec["models"]))

    def limit_for(self, model: str | None, headers: Mapping[str, str] | None = None) -> ModelLimit:
        bare = bare_model_id(model or "")
        window = None
        if bare:
            window = _longest_prefix(self._override_windows, bare) or _longest_prefix(self._windows, bare)
        window = window or self.default_window
        for beta in _beta_flags(headers):
            spec = self._betas.get(beta)
            if spec and any(bare.startswith(m) for m in spec[1]):
                window = max(window, spec[0])
        scale = _longest_prefix(self._scales, bare) if bare else None
        return ModelLimit(window=window, count_scale=float(scale or 1.0))

    def window_for(self, model: str | None, headers: Mapping[str, str] | None = None) -> int:
        return self.limit_for(model, headers).window


def _beta_flags(headers: Mapping[str, str] | None) -> list[str]:
    """Every comma-separated flag of every `anthropic-beta` header (case-insensitive name)."""
    if not headers:
        return []
    values: list[str] = []
    get_all = getattr(headers, "get_all", None)  # mitmproxy Headers keep repeated fields
    if callable(get_all):
        values = list(get_all(_BETA_HEADER))
    else:
        values = [v for k, v in headers.items() if k.lower() == _BETA_HEADER]
    return [flag.strip().lower() for v in values for flag in str(v).split(",") if flag.strip()]


_RESERVE_KEYS = ("max_tokens", "max_completion_tokens", "max_output_tokens")


def output_reserve(doc: Mapping[str, Any]) -> int:
    """Tokens the request reserves for the answer (0 when it names no limit)."""
    for key in _RESERVE_KEYS:
        value = doc.get(key)
        if isinstance(value, bool) or value is None:
            continue
        try:
            return max(0, int(float(value))) if isinstance(value, (int, float, JsonNumber)) else 0
        except ValueError:
            return 0
    return 0
