"""headroom core: transport-free optimisation, accounting and state. Never imports mitmproxy."""

from __future__ import annotations

from typing import Any

__all__ = ["compress", "retrieve", "CompressResult"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import headroom_core.<module>` never pays for the compression engine's imports.
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'headroom_core' has no attribute {name!r}")
