"""Keeps `headroom_retrieve` away from the client: turns that carry it go through the relay.

`request` (after the optimiser): a provider request whose conversation holds a marker (or a
carried exchange) gets the tool appended and its carried exchanges re-inserted
(headroom_core.retrieval.conversation), then the flow is pointed at the in-process loopback
relay, which answers the model's retrieval calls and splices the continuation into the same
response. `responseheaders`: the real scheme, host and port come back (flow files, mitmweb and
replay show the provider) and the relay's private header goes. What retrieval did lands in
`flow.metadata` and the flow's comment before the response ends, so accounting sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
from dataclasses import dataclass
from typing import Any

from mitmproxy import ctx, http

from headroom_core import jsonfmt
from headroom_core.ccr import CCRStore
from headroom_core.retrieval.common import TurnOutcome
from headroom_core.retrieval.conversation import ConversationStore, prepare_request
from headroom_core.retrieval.engine import Turn
from headroom_core.retrieval.http1 import Http1Client
from headroom_core.retrieval.relay import TOKEN_HEADER, Registration, Relay
from headroom_core.retrieval.tool import ENDPOINTS
from headroom_core.routing import RouteKind
from headroom_core.storage.factory import open_storage
from headroom_core.tenancy import tenant_of
from headroom_core.wire.common import Endpoint

from .state import META_KEY, FlowState, Shared, body_of, note

logger = logging.getLogger("headroom")

META_RETRIEVAL = "headroom_retrieval"
INLINE_BYTES = 64 << 10  # bodies below this are prepared on the event loop (well under 1 ms)
# Anything that could mean the tool is needed: a marker, a carried call, a fitting note.
_NEEDLE = b"headroom_retrieve"
_TLS_OPTIONS = {"ssl_insecure", "ssl_verify_upstream_trusted_ca", "ssl_verify_upstream_trusted_confdir"}
_PREVIOUS = re.compile(rb'"previous_response_id"\s*:\s*"([^"\\]{1,200})"')


@dataclass(frozen=True)
class RealTarget:
    scheme: str
    host: str
    port: int
    host_header: str | None


def upstream_verify(options: Any) -> ssl.SSLContext | bool:
    """mitmproxy's own upstream TLS settings, for the relay's calls (which bypass mitmproxy)."""
    if getattr(options, "ssl_insecure", False):
        return False
    cafile = getattr(options, "ssl_verify_upstream_trusted_ca", None) or None
    capath = getattr(options, "ssl_verify_upstream_trusted_confdir", None) or None
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    return True


class Retrieval:
    """The request, responseheaders and error hooks of retrieval, over one loopback Relay."""

    def __init__(self, shared: Shared) -> None:
        self.shared = shared
        self.relay: Relay | None = None
        self._own: tuple[CCRStore | None, ConversationStore] | None = None
        self._targets: dict[str, RealTarget] = {}

    # --- lifecycle ---

    def running(self) -> None:
        self._start()

    def _start(self) -> Relay:
        """Start the relay, once. Also called from the first request: mitmproxy 12 may accept
        a flow before the `running` hook has fired."""
        if self.relay is None:
            self.relay = Relay(Http1Client(verify=upstream_verify(ctx.options)))
            self.relay.start()
        return self.relay

    def configure(self, updated: set[str]) -> None:
        if self.relay is not None and updated & _TLS_OPTIONS:
            old, self.relay.client = self.relay.client, Http1Client(verify=upstream_verify(ctx.options))
            with contextlib.suppress(RuntimeError):  # no loop: nothing was ever connected
                asyncio.get_running_loop().create_task(old.aclose())

    def done(self) -> None:
        relay, self.relay = self.relay, None
        if relay is not None:
            try:
                asyncio.get_running_loop().create_task(relay.close())
            except RuntimeError:
                pass

    def stores(self) -> tuple[CCRStore | None, ConversationStore]:
        """The CCR store the compressor writes to and retrieval's own state: the process's
        shared services when the addons carry them (`shared.services`), else stores opened
        here on the same backend (the data directory or Redis)."""
        services = getattr(self.shared, "services", None)
        if services is not None and getattr(services, "ccr", None) is not None:
            return services.ccr, ConversationStore(services.storage("retrieval"))
        if self._own is None:
            settings = self.shared.core.settings
            ccr, state = None, None
            try:
                ccr = CCRStore(open_storage(settings, "ccr", settings.ccr_max_bytes),
                               ttl=settings.ccr_ttl)
                state = open_storage(settings, "retrieval")
            except Exception as e:  # misses and derived stickiness still work without them
                logger.warning("headroom: retrieval stores unavailable (%s)", e)
            self._own = (ccr, ConversationStore(state))
        return self._own

    # --- hooks ---

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        state = self.shared.flows.get(flow.id)
        if state is None or state.route.kind is not RouteKind.UPSTREAM:
            return
        if state.ticket is not None and state.ticket.bypass:
            return  # x-headroom-bypass: the request goes out as the client wrote it
        endpoint = state.route.endpoint
        req = flow.request
        if endpoint not in ENDPOINTS or req.method != "POST":
            return
        try:
            self._start()
            await self._prepare(flow, endpoint, state)
        except Exception as e:  # fail open: the request goes out as the optimiser left it
            logger.exception("headroom: flow %s: retrieval preparation failed", flow.id)
            note(flow, f"headroom: retrieval not offered ({type(e).__name__}: {e})")

    async def _prepare(self, flow: http.HTTPFlow, endpoint: Endpoint, state: FlowState) -> None:
        req = flow.request
        body = body_of(req, state.headers)  # as the optimiser left it
        previous = _PREVIOUS.search(body) if endpoint is Endpoint.OPENAI_RESPONSES else None
        if _NEEDLE not in body and previous is None:
            return  # nothing in this request can need the tool: no parse, no lookup
        tenant = state.ticket.tenant if state is not None and state.ticket is not None \
            else tenant_of(req.headers)

        def prepare() -> tuple[Any, bytes | None, tuple]:
            stores = self.stores()  # opened on first use, off the event loop
            conversations = stores[1]
            if _NEEDLE not in body:  # a Responses chain: only its record can say
                key = "resp:" + previous.group(1).decode("utf-8", "replace")
                if not conversations.record(tenant, key).get("tool"):
                    return None, None, stores
            doc = jsonfmt.loads(body)
            prep = prepare_request(doc, endpoint, tenant, conversations)
            new = jsonfmt.dumps(doc, jsonfmt.detect_style(body)) if prep.changed else None
            return prep, new, stores

        try:
            if len(body) < INLINE_BYTES and not self.shared.core.settings.redis_url:
                # Small body, local store: cheaper than a thread hop, which waits for the GIL
                # while the accounting worker counts tokens.
                prep, new_body, stores = prepare()
            else:
                prep, new_body, stores = await asyncio.to_thread(prepare)
        except ValueError:
            return  # not JSON we can read: the provider will judge it
        if prep is None:
            return
        meta = flow.metadata.setdefault(META_RETRIEVAL, {})
        meta.update(prep.as_metadata())
        if new_body is not None:
            req.content = new_body
        if prep.note:
            note(flow, f"headroom: {prep.note}")
        if prep.tool:
            self._point_at_relay(flow, endpoint, tenant, prep.conversation, *stores)

    def _point_at_relay(self, flow: http.HTTPFlow, endpoint: Endpoint, tenant: str,
                        conversation: str, ccr: CCRStore | None,
                        conversations: ConversationStore) -> None:
        req = flow.request
        target = RealTarget(req.scheme, req.host, req.port, req.host_header)
        settings = self.shared.core.settings
        services = getattr(self.shared, "services", None)
        # TOIN learns from what the model retrieves (only over the services' own CCR store)
        learn = services.learn_retrieval if services is not None and services.ccr is ccr else None

        def make_turn(body: bytes) -> Turn:
            return Turn(endpoint, tenant, body, ccr, conversations, conversation,
                        settings.max_retrieval_rounds, on_retrieved=learn)

        def on_outcome(outcome: TurnOutcome) -> None:
            self._record(flow, outcome)

        self.relay.register(Registration(
            flow.id, f"{target.scheme}://{_authority(target.host)}:{target.port}", make_turn,
            on_outcome, endpoint.provider, host_header=target.host_header))
        self._targets[flow.id] = target
        req.scheme, req.host, req.port = "http", "127.0.0.1", self.relay.port
        req.headers[TOKEN_HEADER] = flow.id

    def _record(self, flow: http.HTTPFlow, outcome: TurnOutcome) -> None:
        meta = flow.metadata.setdefault(META_RETRIEVAL, {})
        meta.update(outcome.as_metadata())
        summary = flow.metadata.get(META_KEY)
        if isinstance(summary, dict) and outcome.hashes:
            summary.update(retrieval_rounds=outcome.rounds, retrieved_hashes=list(outcome.hashes),
                           retrieved_bytes=outcome.retrieved_bytes)
        line = outcome.comment()
        if line:
            note(flow, line)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        target = self._targets.pop(flow.id, None)
        if target is None:
            return
        self._restore(flow, target)
        resp = flow.response
        if resp is not None and not resp.stream and \
                resp.headers.get("content-type", "").lower().startswith("text/event-stream"):
            resp.stream = True  # another addon may still wrap it in a tap

    def error(self, flow: http.HTTPFlow) -> None:
        target = self._targets.pop(flow.id, None)
        if self.relay is not None:
            self.relay.unregister(flow.id)
        if target is not None:
            self._restore(flow, target)

    @staticmethod
    def _restore(flow: http.HTTPFlow, target: RealTarget) -> None:
        req = flow.request
        req.scheme, req.host, req.port = target.scheme, target.host, target.port
        req.host_header = target.host_header
        req.headers.pop(TOKEN_HEADER, None)


def _authority(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
