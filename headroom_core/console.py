"""The start-up banner of `headroom proxy`, and which features a configuration switches on.

`feature_states` is plain Python (used by `/health` too); rich is imported only to print the
banner, so nothing on the request path pays for it.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .settings import OPTIONS_BY_NAME, Settings, unavailable_in_use

NOT_YET = "not yet available"


def _state(settings: Settings, option: str, on: bool, detail: str = "",
           installed: bool | None = None) -> str:
    """"on", "off" or "not yet available" (asked for, but its feature is not built)."""
    if not on:
        return "off"
    built = OPTIONS_BY_NAME[option].available if installed is None else installed
    if not built:
        return NOT_YET
    return f"on ({detail})" if detail else "on"


def feature_states(settings: Settings, core: Any = None) -> dict[str, str]:
    """Each feature's state; with a running core, "on" also needs its component installed."""
    s = settings

    def has(attr: str) -> bool | None:
        return None if core is None else getattr(core, attr, None) is not None

    limits = ", ".join(x for x in (f"{s.rpm} rpm" if s.rpm else "",
                                   f"{s.tpm} tpm" if s.tpm else "") if x)
    return {
        "optimize": _state(s, "optimize", s.optimize, installed=has("optimizer")),
        "response_cache": _state(s, "cache", s.cache,
                                 f"ttl {s.cache_ttl} s, max {s.cache_max_entries} entries",
                                 installed=has("response_cache")),
        "semantic_cache": _semantic_state(s),
        "rate_limit": _state(s, "rate_limit", s.rate_limit and bool(limits), limits,
                             installed=has("admission")),
        "budget": _state(s, "budget", bool(s.budget.strip()),
                         f"{s.budget} USD {s.budget_period}, {s.budget_scope}",
                         installed=has("admission")),
        "llmlingua": _llmlingua_state(s, core),
        "forward_proxy": _state(s, "forward", s.forward, f"port {s.forward_port}"),
        "shared_state": "redis" if s.redis_url else f"disk ({s.data_dir})",
        "request_log": _state(s, "log_file", bool(s.log_file), s.log_file),
    }


def _llmlingua_state(s: Settings, core: Any) -> str:
    """With a running core: whether the model is loading, ready or failed (ml imports no torch)."""
    if not s.llmlingua:
        return "off"
    from .ml.llmlingua import is_installed

    if not is_installed():
        return "not installed"
    service = getattr(getattr(core, "optimizer", None), "llmlingua", None)
    if service is None:
        return f"on ({s.llmlingua_device}, rate {s.llmlingua_rate})"
    if service.state == "failed":
        return f"failed ({service.load_error})"
    device = service.device or s.llmlingua_device
    return f"on ({service.state}, {device}, rate {s.llmlingua_rate})"


def _semantic_state(s: Settings) -> str:
    """The semantic cache sits in front of the response cache and needs the semantic extra."""
    if not s.semantic_cache:
        return "off"
    if not s.cache:
        return "off (needs the response cache)"
    from .embeddings import available  # finds the packages, imports none of them

    if not available():
        return "not installed (pip install 'headroom-proxy[semantic]')"
    return f"on (threshold {s.semantic_cache_threshold})"


def banner_lines(settings: Settings, version: str) -> list[tuple[str, str]]:
    """(label, value) rows of the banner; plain text, rich markup added when printing."""
    s = settings
    rows = [("listening", f"http://{s.host}:{s.port}")]
    if s.forward:
        rows.append(("forward proxy", f"http://{s.host}:{s.forward_port}"))
    rows += [("anthropic", s.anthropic_api_url), ("openai", s.openai_api_url),
             ("endpoints", "/health  /stats  /metrics")]
    for name, state in feature_states(s).items():
        if name != "llmlingua":  # its own line below the table, in the words of issue 8
            rows.append((name.replace("_", " "), state))
    missing = unavailable_in_use(s)
    if missing:
        rows.append((NOT_YET, ", ".join(missing) + " (accepted; no effect in this version)"))
    return rows


def print_banner(settings: Settings, version: str, stream: TextIO | None = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream or sys.stderr, highlight=False)
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for label, value in banner_lines(settings, version):
        style = ("green" if value.startswith("on") else "yellow" if NOT_YET in value or
                 label == NOT_YET else "dim" if value == "off" else "")
        table.add_row(Text(label), Text(value, style=style))  # Text: values are not markup
    console.print(Text.assemble(("headroom", "bold cyan"), f" {version} — context-optimisation proxy"))
    console.print(table)
    from .ml.llmlingua import startup_message  # resolves the device (torch) only when on

    level, text = startup_message(settings)
    console.print(Text(text, style={"warning": "bold yellow", "info": "green" if settings.llmlingua
                                    else ""}.get(level, "dim")), soft_wrap=True)


_VERSION: str | None = None


def version() -> str:
    """The installed distribution's version (read once)."""
    global _VERSION
    if _VERSION is None:
        try:
            from importlib.metadata import version as dist_version

            _VERSION = dist_version("headroom-proxy")
        except Exception:  # running from a tree that was never installed
            _VERSION = "0+unknown"
    return _VERSION
