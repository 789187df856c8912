"""Declares every `headroom_*` mitmproxy option from the settings table and keeps Settings current.

A declared option's default is its environment variable's value when that is set, so plain
`mitmdump -s addons/headroom.py` honours the same precedence as `headroom proxy`:
`--set` > environment > built-in default. A bad value (from `--set` or the environment) fails
with an OptionsError naming the flag, which mitmproxy reports at start.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence  # typing.Sequence[str] is refused by mitmproxy
from typing import Any

from mitmproxy import ctx, exceptions

from headroom_core.settings import OPTIONS, OptionSpec, Settings, env_value

from .state import Shared

PREFIX = "headroom_"


def typespec(spec: OptionSpec) -> Any:
    """mitmproxy accepts str, int, bool and Sequence[str]; money and ratios stay strings."""
    if spec.kind is list:
        return Sequence[str]
    if spec.kind in (bool, int):
        return spec.kind
    return str


def declared_default(spec: OptionSpec, environ: Mapping[str, str]) -> tuple[Any, str]:
    """(default for mitmproxy, error text): the env value if usable, else the built-in default."""
    try:
        value = env_value(spec, environ)
    except ValueError as e:
        return spec.default, f"{spec.env}: {e}"
    return (list(value) if spec.kind is list else value), ""


def help_text(spec: OptionSpec) -> str:
    extra = f" Environment: {spec.env}." if spec.env else ""
    if not spec.available:
        extra += " Not yet available."
    return spec.help + extra


def settings_from_options(options: Any) -> Settings:
    """Settings from the current mitmproxy option values (ValueError names the bad flag)."""
    return Settings.from_values({s.name: getattr(options, s.mitm_name) for s in OPTIONS})


class HeadroomOptions:
    """The option table as mitmproxy options; pushes each valid change into the core."""

    def __init__(self, shared: Shared, environ: Mapping[str, str] | None = None) -> None:
        self.shared = shared
        self.environ = os.environ if environ is None else environ
        self.env_errors: list[str] = []

    def load(self, loader: Any) -> None:
        self.env_errors = []
        defaults = {}
        for spec in OPTIONS:
            default, error = declared_default(spec, self.environ)
            if error:
                self.env_errors.append(error)
            defaults[spec.name] = default
            if spec.mitm_name not in ctx.options:  # else declared by a copy loaded before us
                loader.add_option(spec.mitm_name, typespec(spec), default, help_text(spec))
        # The environment's values hold from the start, even before a configure event names them.
        try:
            self.shared.core.configure(Settings.from_values(defaults))
        except ValueError as e:
            self.env_errors.append(str(e))

    def configure(self, updated: set[str]) -> None:
        if self.env_errors:
            errors, self.env_errors = self.env_errors, []
            raise exceptions.OptionsError("bad environment value: " + "; ".join(errors))
        if not any(name.startswith(PREFIX) for name in updated):
            return
        try:
            settings = settings_from_options(ctx.options)
        except ValueError as e:
            raise exceptions.OptionsError(str(e)) from e
        self.shared.core.configure(settings)
        try:
            self.shared.attach(settings)
        except Exception as e:  # an unusable data dir or Redis URL must fail at start, clearly
            raise exceptions.OptionsError(f"headroom could not open its state: {e}") from e
