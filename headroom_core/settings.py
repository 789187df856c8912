"""Every headroom option, declared once: CLI flag, environment variable, mitmproxy option, default.

The same table drives `headroom proxy --help`, the `headroom_*` mitmproxy options that
`addons/headroom.py` declares, and the one `Settings` value the rest of the code reads.
Precedence is documented once and applied here: flag (or `--set`) > environment > default.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

DEFAULT_DATA_DIR = "~/.headroom"


@dataclass(frozen=True)
class OptionSpec:
    """One option. `name` is the Settings attribute; the flag and mitmproxy names derive from it."""

    name: str
    kind: type  # bool, int, str, float (kept as str for mitmproxy), or list (of str)
    default: Any
    help: str
    env: str | None = None
    flag: str | None = None  # defaults to --name-with-dashes; for bools that default True, --no-...
    available: bool = True  # False: the feature is not built yet; using it is reported at start

    @property
    def cli_flag(self) -> str:
        if self.flag:
            return self.flag
        return "--" + self.name.replace("_", "-")

    @property
    def mitm_name(self) -> str:
        return "headroom_" + self.name


def _o(name: str, kind: type, default: Any, help: str, **kw: Any) -> OptionSpec:
    return OptionSpec(name=name, kind=kind, default=default, help=help, **kw)


# Booleans that default to True are switched off with a --no-... flag (`flag` names it).
OPTIONS: tuple[OptionSpec, ...] = (
    # --- listener and upstreams (foundation) ---
    _o("host", str, "127.0.0.1", "Address the reverse-proxy listener binds to.", env="HEADROOM_HOST"),
    _o("port", int, 8787, "Port of the reverse-proxy listener.", env="HEADROOM_PORT"),
    _o("openai_api_url", str, "https://api.openai.com",
       "OpenAI upstream base URL; a path prefix is kept (http://host:9000/openai).",
       env="OPENAI_TARGET_API_URL"),
    _o("anthropic_api_url", str, "https://api.anthropic.com",
       "Anthropic upstream base URL; a path prefix is kept.", env="ANTHROPIC_TARGET_API_URL"),
    _o("data_dir", str, DEFAULT_DATA_DIR,
       "Directory for persistent state (CCR store, response cache, budgets, TOIN).",
       env="HEADROOM_DATA_DIR"),
    _o("log_file", str, "", "Append one JSON line per request to this file (JSONL).",
       env="HEADROOM_LOG_FILE"),
    _o("log_messages", bool, False, "Include message content in the request log.",
       env="HEADROOM_LOG_MESSAGES"),
    _o("quiet", bool, False, "Do not print a console line per request.", env="HEADROOM_QUIET"),
    # --- optimisation (compression engine) ---
    _o("optimize", bool, True, "Compress tool outputs and fit the context window.",
       env="HEADROOM_OPTIMIZE", flag="--no-optimize"),
    _o("min_tokens", int, 500, "Tool outputs smaller than this many tokens are left alone.",
       env="HEADROOM_MIN_TOKENS"),
    _o("min_savings", str, "0.10",
       "A compressed rendering is used only if it saves at least this share of tokens (0..1).",
       env="HEADROOM_MIN_SAVINGS"),
    _o("protect_tool", list, [],
       "Never compress outputs of this tool (repeatable); added to the built-in exact-output list.",
       env="HEADROOM_PROTECT_TOOLS"),
    _o("compress_tool", list, [],
       "Compress outputs of this tool even if it is protected by default (repeatable).",
       env="HEADROOM_COMPRESS_TOOLS"),
    _o("ccr_ttl", int, 86400, "Seconds an original stays retrievable in the CCR store.",
       env="HEADROOM_CCR_TTL"),
    _o("ccr_max_bytes", int, 1 << 30, "Size cap of the CCR store in bytes.",
       env="HEADROOM_CCR_MAX_BYTES"),
    _o("compression_budget_ms", int, 2000,
       "Time budget for optimising one request; past it the original is forwarded.",
       env="HEADROOM_COMPRESSION_BUDGET_MS"),
    # --- retrieval ---
    _o("max_retrieval_rounds", int, 3,
       "Most headroom_retrieve rounds answered within one client turn.",
       env="HEADROOM_MAX_RETRIEVAL_ROUNDS"),
    # --- context fitting ---
    _o("model_limits", str, "", "JSON file overriding the built-in context windows per model.",
       env="HEADROOM_MODEL_LIMITS"),
    _o("default_context_window", int, 128000, "Context window assumed for unknown models.",
       env="HEADROOM_DEFAULT_CONTEXT_WINDOW"),
    _o("compress_first", bool, True,
       "Compress older tool results harder before dropping any message.",
       env="HEADROOM_COMPRESS_FIRST", flag="--no-compress-first"),
    _o("intelligent_context", bool, True,
       "Score units to decide what to drop (off: RollingWindow drops oldest first).",
       env="HEADROOM_INTELLIGENT_CONTEXT", flag="--no-intelligent-context"),
    _o("intelligent_scoring", bool, True,
       "Use multi-factor scoring (off: position only).",
       env="HEADROOM_INTELLIGENT_SCORING", flag="--no-intelligent-scoring"),
    _o("protect_last_turns", int, 4, "The last K turns are never dropped by context fitting.",
       env="HEADROOM_PROTECT_LAST_TURNS"),
    _o("scoring_weights", str, "recency=0.30,semantic=0.25,toin=0.10,error=0.20,reference=0.15",
       "Weights of the scoring factors, as name=value pairs.", env="HEADROOM_SCORING_WEIGHTS"),
    _o("toin_global", bool, False, "Aggregate TOIN patterns across tenants.",
       env="HEADROOM_TOIN_GLOBAL"),
    # --- spend guard ---
    _o("cache", bool, True, "Answer repeated identical requests from the response cache.",
       env="HEADROOM_CACHE", flag="--no-cache"),
    _o("cache_ttl", int, 3600, "Seconds a cached response stays valid.", env="HEADROOM_CACHE_TTL"),
    _o("cache_max_entries", int, 10000, "Most entries in the response cache.",
       env="HEADROOM_CACHE_MAX_ENTRIES"),
    _o("semantic_cache", bool, False,
       "Also answer near-identical single-turn requests (needs the semantic extra).",
       env="HEADROOM_SEMANTIC_CACHE"),
    _o("semantic_cache_threshold", str, "0.95", "Cosine similarity needed for a semantic hit.",
       env="HEADROOM_SEMANTIC_CACHE_THRESHOLD"),
    _o("rate_limit", bool, True, "Enforce --rpm and --tpm per tenant.",
       env="HEADROOM_RATE_LIMIT", flag="--no-rate-limit"),
    _o("rpm", int, 0, "Requests per minute per tenant (0: unlimited).", env="HEADROOM_RPM"),
    _o("tpm", int, 0, "Input tokens per minute per tenant (0: unlimited).", env="HEADROOM_TPM"),
    _o("budget", str, "", "Spend limit in USD per period (empty: none).", env="HEADROOM_BUDGET"),
    _o("budget_period", str, "monthly", "Budget period: hourly, daily or monthly.",
       env="HEADROOM_BUDGET_PERIOD"),
    _o("budget_scope", str, "tenant", "Budget applies per tenant, global, or both.",
       env="HEADROOM_BUDGET_SCOPE"),
    _o("pricing_file", str, "", "JSON file overriding the built-in model prices.",
       env="HEADROOM_PRICING_FILE"),
    _o("default_price", str, "3.00,15.00",
       "USD per million input,output tokens for models missing from the pricing table.",
       env="HEADROOM_DEFAULT_PRICE"),
    _o("redis_url", str, "", "Keep shared state in Redis instead of the data directory.",
       env="HEADROOM_REDIS_URL"),
    # --- forward mode and inspection ---
    _o("forward", bool, False,
       "Also run a system-wide HTTPS proxy that intercepts only provider hosts.",
       env="HEADROOM_FORWARD"),
    _o("forward_port", int, 8080, "Port of the forward (regular) proxy listener.",
       env="HEADROOM_FORWARD_PORT"),
    _o("intercept_host", list, [], "Extra host to intercept in forward mode (repeatable).",
       env="HEADROOM_INTERCEPT_HOSTS"),
    # --- LLMLingua ---
    _o("llmlingua", bool, False, "Compress prose with LLMLingua-2 (needs the llmlingua extra).",
       env="HEADROOM_LLMLINGUA"),
    _o("llmlingua_device", str, "auto", "auto, cuda, cpu or mps.", env="HEADROOM_LLMLINGUA_DEVICE"),
    _o("llmlingua_rate", str, "0.3", "Share of tokens LLMLingua keeps.", env="HEADROOM_LLMLINGUA_RATE"),
    _o("llmlingua_model", str, "microsoft/llmlingua-2-xlm-roberta-large-meetingbank",
       "Model name or local directory.", env="HEADROOM_LLMLINGUA_MODEL"),
)

OPTIONS_BY_NAME: dict[str, OptionSpec] = {o.name: o for o in OPTIONS}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_value(spec: OptionSpec, raw: Any) -> Any:
    """Turn a raw value (env string, CLI value, mitmproxy option) into the option's type.

    Raises ValueError with a message naming the option when the value is unusable.
    """
    try:
        if spec.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(f"expected true/false, got {raw!r}")
        if spec.kind is int:
            return int(raw)
        if spec.kind is list:
            if isinstance(raw, str):
                return [p.strip() for p in raw.split(",") if p.strip()]
            return [str(p) for p in raw]
        return str(raw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{spec.cli_flag}: {e}") from e


def env_value(spec: OptionSpec, environ: Mapping[str, str]) -> Any:
    """The value the environment gives this option, or its built-in default."""
    if spec.env and spec.env in environ:
        return parse_value(spec, environ[spec.env])
    return spec.default


@dataclass(frozen=True)
class Settings:
    """The resolved configuration of one headroom process."""

    host: str = "127.0.0.1"
    port: int = 8787
    openai_api_url: str = "https://api.openai.com"
    anthropic_api_url: str = "https://api.anthropic.com"
    data_dir: str = DEFAULT_DATA_DIR
    log_file: str = ""
    log_messages: bool = False
    quiet: bool = False
    optimize: bool = True
    min_tokens: int = 500
    min_savings: str = "0.10"
    protect_tool: tuple[str, ...] = ()
    compress_tool: tuple[str, ...] = ()
    ccr_ttl: int = 86400
    ccr_max_bytes: int = 1 << 30
    compression_budget_ms: int = 2000
    max_retrieval_rounds: int = 3
    model_limits: str = ""
    default_context_window: int = 128000
    compress_first: bool = True
    intelligent_context: bool = True
    intelligent_scoring: bool = True
    protect_last_turns: int = 4
    scoring_weights: str = "recency=0.30,semantic=0.25,toin=0.10,error=0.20,reference=0.15"
    toin_global: bool = False
    cache: bool = True
    cache_ttl: int = 3600
    cache_max_entries: int = 10000
    semantic_cache: bool = False
    semantic_cache_threshold: str = "0.95"
    rate_limit: bool = True
    rpm: int = 0
    tpm: int = 0
    budget: str = ""
    budget_period: str = "monthly"
    budget_scope: str = "tenant"
    pricing_file: str = ""
    default_price: str = "3.00,15.00"
    redis_url: str = ""
    forward: bool = False
    forward_port: int = 8080
    intercept_host: tuple[str, ...] = ()
    llmlingua: bool = False
    llmlingua_device: str = "auto"
    llmlingua_rate: str = "0.3"
    llmlingua_model: str = "microsoft/llmlingua-2-xlm-roberta-large-meetingbank"

    def __post_init__(self) -> None:
        validate(self)

    @property
    def data_path(self) -> Path:
        return Path(os.path.expanduser(self.data_dir))

    @property
    def min_savings_ratio(self) -> float:
        return float(self.min_savings)

    @property
    def budget_usd(self) -> float | None:
        return float(self.budget) if self.budget.strip() else None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> "Settings":
        """Build from already-typed values keyed by option name (unknown names are an error)."""
        clean: dict[str, Any] = {}
        for name, value in values.items():
            spec = OPTIONS_BY_NAME.get(name)
            if spec is None:
                raise ValueError(f"unknown option {name!r}")
            value = parse_value(spec, value)
            clean[name] = tuple(value) if spec.kind is list else value
        return cls(**clean)

    @classmethod
    def resolve(cls, flags: Mapping[str, Any] | None = None,
                environ: Mapping[str, str] | None = None) -> "Settings":
        """flag > env > default. `flags` holds only the options given on the command line."""
        environ = os.environ if environ is None else environ
        flags = flags or {}
        values = {spec.name: env_value(spec, environ) for spec in OPTIONS}
        values.update({k: v for k, v in flags.items() if v is not None})
        return cls.from_values(values)

    def changed(self) -> dict[str, Any]:
        """Options whose value differs from the built-in default."""
        out = {}
        for spec in OPTIONS:
            value = getattr(self, spec.name)
            default = tuple(spec.default) if spec.kind is list else spec.default
            if value != default:
                out[spec.name] = value
        return out

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)


def _check_url(name: str, url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--{name.replace('_', '-')}: expected an http(s) URL, got {url!r}")


def validate(s: Settings) -> None:
    """Raise ValueError (naming the flag) for values no feature could use."""
    if not 0 < s.port < 65536:
        raise ValueError(f"--port: {s.port} is not a TCP port")
    if not 0 < s.forward_port < 65536:
        raise ValueError(f"--forward-port: {s.forward_port} is not a TCP port")
    _check_url("openai_api_url", s.openai_api_url)
    _check_url("anthropic_api_url", s.anthropic_api_url)
    for name in ("min_savings", "semantic_cache_threshold", "llmlingua_rate"):
        try:
            v = float(getattr(s, name))
        except ValueError:
            raise ValueError(f"--{name.replace('_', '-')}: not a number: {getattr(s, name)!r}")
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"--{name.replace('_', '-')}: must lie in 0..1, got {v}")
    if s.budget.strip():
        try:
            if float(s.budget) < 0:
                raise ValueError
        except ValueError:
            raise ValueError(f"--budget: expected a non-negative USD amount, got {s.budget!r}")
    if s.budget_period not in ("hourly", "daily", "monthly"):
        raise ValueError(f"--budget-period: expected hourly, daily or monthly, got {s.budget_period!r}")
    if s.budget_scope not in ("tenant", "global", "both"):
        raise ValueError(f"--budget-scope: expected tenant, global or both, got {s.budget_scope!r}")
    if s.llmlingua_device not in ("auto", "cuda", "cpu", "mps"):
        raise ValueError(f"--llmlingua-device: expected auto, cuda, cpu or mps, got {s.llmlingua_device!r}")
    for name in ("min_tokens", "ccr_ttl", "ccr_max_bytes", "max_retrieval_rounds", "rpm", "tpm",
                 "cache_ttl", "cache_max_entries", "protect_last_turns", "default_context_window",
                 "compression_budget_ms"):
        if getattr(s, name) < 0:
            raise ValueError(f"--{name.replace('_', '-')}: must not be negative")
    parse_price_pair(s.default_price)
    parse_weights(s.scoring_weights)


def parse_price_pair(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(","))
    except ValueError:
        raise ValueError(f"--default-price: expected 'INPUT,OUTPUT' USD per million tokens, got {text!r}")
    return a, b


WEIGHT_NAMES = ("recency", "semantic", "toin", "error", "reference")


def parse_weights(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip()
        if name not in WEIGHT_NAMES:
            raise ValueError(f"--scoring-weights: unknown factor {name!r} (known: {', '.join(WEIGHT_NAMES)})")
        try:
            out[name] = float(value)
        except ValueError:
            raise ValueError(f"--scoring-weights: {name} needs a number, got {value!r}")
    return out


def unavailable_in_use(settings: Settings) -> list[str]:
    """Flags the user set whose feature is not built yet (reported at start, never ignored)."""
    changed = settings.changed()
    return [OPTIONS_BY_NAME[n].cli_flag for n in changed if not OPTIONS_BY_NAME[n].available]

