"""headroom's own endpoints: `/health`, `/stats`, `/metrics`, and the 404 for unknown paths.

`/health` keeps the shape users' health checks parse (`status`, `optimize`, `stats` with
`total_requests`, `tokens_saved`, `savings_percent`) and adds `version`, `uptime_s` and
`features`. The definitions of the figures are in stats.py and served in `/stats`.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import TYPE_CHECKING

from .console import feature_states, version
from .errors import LocalResponse, provider_error

if TYPE_CHECKING:
    from .pipeline import HeadroomCore

NAMES = ("health", "stats", "metrics")


def health_doc(core: "HeadroomCore") -> dict:
    return {"status": "healthy", "optimize": core.settings.optimize,
            "stats": core.stats.health_stats(), "version": version(),
            "uptime_s": core.stats.uptime_s, "features": feature_states(core.settings, core)}


def local_response(core: "HeadroomCore", name: str, method: str) -> LocalResponse:
    """The answer of endpoint `name`; GET and HEAD only."""
    if method not in ("GET", "HEAD"):
        err = provider_error("openai", 405, f"headroom: /{name} answers GET only")
        return replace(err, headers=err.headers + (("allow", "GET, HEAD"),))
    if name == "metrics":
        return LocalResponse(200, (("content-type", core.metrics.content_type),),
                             core.metrics.render())
    doc = health_doc(core) if name == "health" else {"version": version(), **core.stats.snapshot()}
    return LocalResponse(200, (("content-type", "application/json"),),
                         json.dumps(doc, indent=1).encode())


def not_found(method: str, path: str) -> LocalResponse:
    """Unknown paths: 404 in OpenAI's envelope (nothing is sent to a provider)."""
    return provider_error("openai", 404, f"headroom: no route for {method} {path.split('?')[0]} "
                          "(provider APIs live under /v1/; headroom itself serves /health, "
                          "/stats and /metrics)")
