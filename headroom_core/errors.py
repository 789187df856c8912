"""Error responses shaped like the provider the client speaks to (DESIGN.md rule 10)."""

from __future__ import annotations

import json
from dataclasses import dataclass

_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    500: "api_error", 502: "api_error", 503: "overloaded_error",
                    504: "api_error", 529: "overloaded_error"}


@dataclass(frozen=True)
class LocalResponse:
    """A response headroom answers itself, without the provider."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def provider_error(provider: str, status: int, message: str, error_type: str | None = None,
                   retry_after: float | None = None) -> LocalResponse:
    """An error body the provider's own SDK parses: Anthropic's or OpenAI's envelope."""
    if provider == "anthropic":
        etype = error_type or _ANTHROPIC_TYPES.get(status, "api_error")
        doc: dict = {"type": "error", "error": {"type": etype, "message": message}}
    else:
        etype = error_type or ("rate_limit_exceeded" if status == 429 else "invalid_request_error"
                               if status < 500 else "server_error")
        doc = {"error": {"message": message, "type": etype, "param": None, "code": etype}}
    headers = [("content-type", "application/json"), ("x-headroom-error", etype)]
    if retry_after is not None:
        headers.append(("retry-after", str(max(1, int(retry_after + 0.999)))))
    return LocalResponse(status, tuple(headers), json.dumps(doc).encode())
