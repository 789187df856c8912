"""Keeps API keys out of saved flows (`-w`, mitmweb's save): once a flow has been forwarded, its
credential headers are replaced by a redaction naming the tenant hash (DESIGN.md rule 9).

Runs in `response` and `error`, which mitmproxy calls on script addons before its own Save
addon writes the flow; the provider has received the request by then. A flow still in flight
when the proxy stops is written by Save as it is.
"""

from __future__ import annotations

from mitmproxy import http

from headroom_core.pipeline import tenant_from

from .state import META_KEY

CREDENTIAL_HEADERS = (b"x-api-key", b"authorization", b"api-key", b"proxy-authorization")


def redact_credentials(request: http.Request, tenant: str | None = None) -> bool:
    """Replace credential header values in place; True if any was present. `tenant` (the
    hash) is computed from the headers when not given."""
    fields = request.headers.fields
    if not any(name.lower() in CREDENTIAL_HEADERS for name, _ in fields):
        return False
    if tenant is None:
        tenant = tenant_from(request.headers)
    marker = f"[redacted by headroom: {tenant}]".encode()
    request.headers.fields = tuple((name, marker if name.lower() in CREDENTIAL_HEADERS else value)
                                   for name, value in fields)
    return True


def _tenant(flow: http.HTTPFlow) -> str | None:
    meta = flow.metadata.get(META_KEY)
    return meta.get("tenant") if isinstance(meta, dict) else None


class RedactCredentials:
    """Last in the list: everything before it may still read the real headers."""

    def response(self, flow: http.HTTPFlow) -> None:
        redact_credentials(flow.request, _tenant(flow))

    def error(self, flow: http.HTTPFlow) -> None:
        redact_credentials(flow.request, _tenant(flow))
