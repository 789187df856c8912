"""Keeps API keys out of saved flows (`-w`, mitmweb's save): once a flow has been forwarded, its
credential headers are replaced by a redaction naming the tenant hash (DESIGN.md rule 9).

Runs in `response` and `error`, which mitmproxy calls on script addons before its own Save
addon writes the flow; the provider has received the request by then. A flow still in flight
when the proxy stops is written by Save as it is.
"""

from __future__ import annotations

from mitmproxy import http

from headroom_core.pipeline import tenant_from

CREDENTIAL_HEADERS = ("x-api-key", "authorization", "api-key", "proxy-authorization")


def redact_credentials(request: http.Request) -> bool:
    """Replace credential header values in place; True if any was present."""
    headers = request.headers
    present = [name for name in CREDENTIAL_HEADERS if name in headers]
    if not present:
        return False
    marker = f"[redacted by headroom: {tenant_from(headers)}]"
    for name in present:
        headers[name] = marker
    return True


class RedactCredentials:
    """Last in the list: everything before it may still read the real headers."""

    def response(self, flow: http.HTTPFlow) -> None:
        redact_credentials(flow.request)

    def error(self, flow: http.HTTPFlow) -> None:
        redact_credentials(flow.request)
