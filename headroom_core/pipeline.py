"""The request and response path of headroom, without I/O (the caller owns the sockets).

    decision = await core.prepare(RequestInfo(...))   # route -> admission -> cache -> optimise
    ... the caller forwards decision.body (or the original bytes) or answers decision.response ...
    tap = core.stream_tap(decision.ticket, content_encoding)   # for an SSE response
    core.finish_later(decision.ticket, ResponseInfo(...))      # accounting, off the request path

Extension points, all optional attributes of HeadroomCore:
- `optimizer` (Optimizer): rewrites a parsed request; runs in a thread with the per-request time
  budget `compression_budget_ms`; any exception or timeout forwards the original (fail open).
- `admission` (Admission): rate limits and budgets; may refuse with a provider-shaped response.
- `response_cache` (ResponseCacheHook): may answer from the cache; is offered finished responses.
- `pricer`: `(model, Usage) -> USD`.
- `sinks`: callables given every RequestRecord (request log, ...).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Callable, Mapping

from . import accounting, console_line, endpoints, jsonfmt
from .errors import LocalResponse
from .pipeline_values import (  # noqa: F401  (re-exported: callers import them from here)
    Action, Admission, Decision, OptimizeOutcome, Optimizer, Refusal, RequestInfo,
    ResponseCacheHook, ResponseInfo, Ticket)
from .records import RequestRecord
from .routing import Route, RouteKind, route
from .settings import Settings
from .stats import Stats
from .tenancy import tenant_of
from .usage import Usage
from .wire.common import Endpoint

if TYPE_CHECKING:
    from .metrics import Metrics

logger = logging.getLogger("headroom")

BYPASS_HEADER = "x-headroom-bypass"
PRIVATE_HEADER_PREFIX = "x-headroom-"
OPTIMIZABLE = (Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES)
_TRUE = ("1", "true", "yes", "on")
WARM_UP_ALLOWANCE_MS = 10_000
MUST_FIT_ALLOWANCE_MS = 30_000  # extra time for a request that exceeds its context window
OPTIMIZE_SWITCH_INTERVAL_S = 0.001
_METRICS_LOCK = threading.Lock()
ACCOUNT_BATCH_S = 0.05  # finished requests are accounted in batches at most this far apart
_KEY_HEADERS = ("x-api-key", "authorization", "api-key")


def tenant_from(headers: Mapping[str, str]) -> str:
    """tenancy.tenant_of on just the credential headers (mitmproxy's Headers is slow to copy)."""
    return tenant_of({name: value for name in _KEY_HEADERS if (value := headers.get(name))})


# --- the core --------------------------------------------------------------------------------

class HeadroomCore:
    """One per process: settings, aggregates and the extension points, shared by every flow."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self.stats = Stats(clock)
        self._metrics: Metrics | None = None
        self.optimizer: Optimizer | None = None
        self.admission: Admission | None = None
        self.response_cache: ResponseCacheHook | None = None
        self.pricer: Callable[[str, Usage], float] | None = None
        self.sinks: list[Callable[[RequestRecord], None]] = []
        self.console: Callable[[str], None] | None = None  # where request lines go
        self._optimize_pool: ThreadPoolExecutor | None = None
        self._pending: list[tuple[Ticket, ResponseInfo]] = []
        self._drain_handle: asyncio.TimerHandle | None = None
        # One worker: records are applied in order, and flush() can wait for all earlier ones.
        self._account_pool = ThreadPoolExecutor(1, thread_name_prefix="headroom-account")

    @property
    def metrics(self) -> Metrics:
        """The Prometheus registry, built on first use (prometheus_client loads after start)."""
        if self._metrics is None:
            from .metrics import Metrics

            with _METRICS_LOCK:
                if self._metrics is None:
                    self._metrics = Metrics()
        return self._metrics

    def configure(self, settings: Settings) -> None:
        self.settings = settings

    def route(self, method: str, path: str, headers: Mapping[str, str]) -> Route:
        return route(method, path, headers, self.settings)

    # --- request path ---

    async def prepare(self, info: RequestInfo) -> Decision:
        t0 = time.perf_counter()
        r = info.route
        headers = info.headers
        bypass = (headers.get(BYPASS_HEADER) or "").strip().lower() in _TRUE
        optimize = self._should_optimize(info, bypass)
        if (r.is_upstream and not optimize and self.admission is None
                and (self.response_cache is None or not self.settings.cache or bypass)):
            # The common path with nothing to decide (no admission, no cache lookup, a body the
            # optimiser would not run on): one Ticket, no hook, no replace().
            return Decision(Action.FORWARD, Ticket(info, tenant_from(headers), bypass=bypass,
                                                   overhead_ms=_ms_since(t0)))
        ticket = Ticket(info, tenant_from(headers), bypass=bypass)
        if r.kind is RouteKind.LOCAL:
            return Decision(Action.RESPOND, ticket, response=self.local_response(r.local, info.method))
        if r.kind is RouteKind.NOT_FOUND:
            return Decision(Action.RESPOND, ticket, response=self.not_found(info.method, info.path))
        if self.admission is not None:
            refusal = await self.admission.admit(ticket)
            if refusal is not None:
                ticket = replace(ticket, refused=refusal.reason, overhead_ms=_ms_since(t0))
                return Decision(Action.RESPOND, ticket, response=refusal.response)
        if self.response_cache is not None and self.settings.cache and not ticket.bypass:
            hit = await self.response_cache.lookup(ticket)
            ticket = replace(ticket, cache="miss" if hit is None else "hit")
            if hit is not None:
                return Decision(Action.RESPOND, replace(ticket, overhead_ms=_ms_since(t0)),
                                response=hit)
        body = None
        if optimize:
            ticket, body = await self._optimize(ticket)
        ticket = replace(ticket, overhead_ms=_ms_since(t0))
        if body is not None:
            return Decision(Action.FORWARD_CHANGED, ticket, body=body)
        return Decision(Action.FORWARD, ticket)

    def _should_optimize(self, info: RequestInfo, bypass: bool) -> bool:
        return (self.optimizer is not None and self.settings.optimize and not bypass
                and info.method == "POST" and info.route.endpoint in OPTIMIZABLE
                and len(info.body) >= max(1, self.settings.min_tokens))

    async def _optimize(self, ticket: Ticket) -> tuple[Ticket, bytes | None]:
        """Run the optimizer off the loop within the time budget; fail open on anything."""
        if self._optimize_pool is None:
            self._optimize_pool = ThreadPoolExecutor(2, thread_name_prefix="headroom-optimize")
            # The optimiser is CPU-bound Python sharing the GIL with the event loop: at the
            # default 5 ms switch interval each wake-up of the loop may wait that long for it,
            # several times per request (scripts/bench_loop.py: p99 delay ~2x lower at 1 ms).
            sys.setswitchinterval(min(sys.getswitchinterval(), OPTIMIZE_SWITCH_INTERVAL_S))
        loop = asyncio.get_running_loop()
        seen: dict[str, Any] = {}  # the worker notes the model here as soon as it knows it
        budget_ms = self.settings.compression_budget_ms
        if budget_ms and not getattr(self.optimizer, "warm", True):
            budget_ms += WARM_UP_ALLOWANCE_MS  # once per process: imports and the tokenizer
        if budget_ms:  # the optimiser's deadline is this one (a job may wait in the pool first)
            seen["deadline"] = time.monotonic() + budget_ms / 1000
        job = loop.run_in_executor(self._optimize_pool, self._optimize_sync, ticket, seen)
        try:
            try:
                result, body = await (asyncio.wait_for(asyncio.shield(job), budget_ms / 1000)
                                      if budget_ms else job)
            except asyncio.TimeoutError:
                if not seen.get("must_fit"):
                    raise
                # Over the model's window: the original would only earn the provider's 400, so
                # fitting gets its extra time (bounded) instead of the request going out as is.
                result, body = await asyncio.wait_for(job, MUST_FIT_ALLOWANCE_MS / 1000)
        except asyncio.TimeoutError:
            # The worker cannot be stopped; its late result is dropped unused.
            return self._failed(replace(ticket, model=seen.get("model", "")), "timeout",
                                f"optimisation exceeded its {budget_ms} ms budget"), None
        except Exception as e:  # fail open: the original request goes out
            return self._failed(replace(ticket, model=seen.get("model", "")), "exception",
                                f"{type(e).__name__}: {e}"), None
        return result, body

    def _failed(self, ticket: Ticket, reason: str, message: str) -> Ticket:
        logger.warning("headroom: flow %s: %s; forwarding the original request",
                       ticket.info.flow_id, message)
        self.metrics.optimization_error(ticket.info.route.provider, ticket.model, reason)
        return replace(ticket, error=f"optimisation failed ({message}); original forwarded")

    def _optimize_sync(self, ticket: Ticket, seen: dict[str, Any]) -> tuple[Ticket, bytes | None]:
        from .wire.request import parse_request  # the wire views load with the first optimisation

        raw = ticket.info.body
        try:
            doc = jsonfmt.loads(raw)
            request = parse_request(doc, ticket.info.route.endpoint)
        except ValueError as e:  # not a body we understand: the provider will judge it
            return replace(ticket, notes=(f"not optimised: {e}",)), None
        model = doc.get("model") if isinstance(doc, dict) else None
        seen["model"] = model if isinstance(model, str) else ""
        ticket = replace(ticket, model=seen["model"], stream=request.stream)
        extra = {"progress": seen} if getattr(self.optimizer, "reports_progress", False) else {}
        outcome = self.optimizer.optimize(request, ticket.tenant, headers=ticket.info.headers,
                                          **extra)
        ticket = replace(ticket, tokens_before=outcome.tokens_before,
                         tokens_after=outcome.tokens_after, transforms=outcome.transforms,
                         notes=outcome.notes, settle=outcome.settle)
        if not outcome.changed:
            return replace(ticket, tokens_after=outcome.tokens_before), None
        body = jsonfmt.dumps(request.doc, jsonfmt.detect_style(raw))
        if body == raw:
            return ticket, None
        return replace(ticket, changed=True), body

    def local_response(self, name: str, method: str) -> LocalResponse:
        """/health, /stats and /metrics (endpoints.py)."""
        return endpoints.local_response(self, name, method)

    def not_found(self, method: str, path: str) -> LocalResponse:
        return endpoints.not_found(method, path)

    # --- response path ---

    def stream_tap(self, ticket: Ticket, content_encoding: str) -> accounting.StreamAccount:
        account = accounting.StreamAccount(ticket.info.route.endpoint, content_encoding)
        if self.response_cache is not None and ticket.cache == "miss":
            self.response_cache.observe_stream(ticket, account.tap)  # to cache the final answer
        return account

    def finish_later(self, ticket: Ticket, response: ResponseInfo) -> None:
        """Account for a finished request in the accounting worker, never on the loop.

        Requests are batched: waking the worker once per request costs the loop a thread
        hand-off each time; a batch every ACCOUNT_BATCH_S costs one.
        """
        self._pending.append((ticket, response))
        if self._drain_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): account now, in the worker
            self._drain()
            return
        self._drain_handle = loop.call_later(ACCOUNT_BATCH_S, self._drain)

    def _drain(self) -> Future:
        self._drain_handle = None
        batch, self._pending = self._pending, []
        return self._account_pool.submit(self._finish_batch, batch)

    async def flush(self) -> None:
        """Wait until every request finished so far is in stats and metrics."""
        if self._drain_handle is not None:
            self._drain_handle.cancel()
        await asyncio.wrap_future(self._drain())

    def _finish_batch(self, batch: list[tuple[Ticket, ResponseInfo]]) -> None:
        lines: list[str] = []
        for ticket, response in batch:
            try:
                record = self.finish(ticket, response, console=False)
            except Exception:
                logger.exception("headroom: flow %s: accounting failed", ticket.info.flow_id)
                continue
            if record is not None:
                lines.append(console_line.format_request_line(record))
        if lines and self.console is not None and not self.settings.quiet:
            self.console("\n".join(lines))  # one write for the batch

    def finish(self, ticket: Ticket, response: ResponseInfo,
               console: bool = True) -> RequestRecord | None:
        """Build the request's record and hand it to stats, metrics, hooks, sinks and (with
        `console`) the console line."""
        info = ticket.info
        if not info.route.is_upstream:
            return None  # our own endpoints and 404s are not provider requests
        if ticket.settle is not None:
            ticket = _settled(ticket)
        if ticket.tokens_before is not None and ticket.model and ticket.stream is not None:
            # The optimiser already parsed and counted this body: don't parse it twice.
            facts = accounting.RequestFacts(ticket.tokens_before, ticket.model, ticket.stream)
        else:
            facts = accounting.request_facts(info.body, info.route.endpoint,
                                             count=ticket.tokens_before is None)
        before = ticket.tokens_before if ticket.tokens_before is not None else facts.tokens
        after = ticket.tokens_after if ticket.tokens_after is not None else before
        if response.tap is not None:
            outcome = response.tap.outcome()
        else:
            outcome = accounting.body_outcome(info.route.endpoint, response.status,
                                              response.headers, response.body)
        # Answered by headroom itself (cache hit, refusal): the provider billed nothing.
        usage = Usage() if ticket.cache == "hit" or ticket.refused else outcome.usage
        model = ticket.model or facts.model or outcome.model
        record = RequestRecord(
            request_id=info.flow_id, tenant=ticket.tenant, provider=info.route.provider,
            endpoint=info.route.endpoint.value, model=model,
            stream=facts.stream or response.tap is not None, status=response.status,
            started_at=info.started_at, tokens_before=before, tokens_after=after, usage=usage,
            cost_usd=self.pricer(model, usage) if self.pricer else 0.0, cache=ticket.cache,
            transforms=ticket.transforms, overhead_ms=ticket.overhead_ms,
            latency_ms=max(0.0, (response.ended_at - info.started_at) * 1000.0),
            refused=ticket.refused, retrieval_rounds=response.retrieval_rounds,
            retrieved_hashes=response.retrieved_hashes, retrieved_bytes=response.retrieved_bytes,
            error="; ".join(e for e in (ticket.error, response.error, outcome.error) if e),
            messages=_message_content(info.body) if self.settings.log_messages else None)
        # Spend and the cache fill first: once /stats counts a request, its cost is charged
        # and its answer is cached (clients and tests may rely on that order).
        if self.admission is not None:
            self.admission.settle(record)
        if self.response_cache is not None and ticket.cache == "miss":
            self.response_cache.store(ticket, response)
        self.stats.record(record)
        self.metrics.observe(record)
        for sink in self.sinks:
            sink(record)
        if console and self.console is not None and not self.settings.quiet:
            self.console(console_line.format_request_line(record))
        return record

    def close(self) -> None:
        if self._drain_handle is not None:
            self._drain_handle.cancel()
        if self._pending:
            self._drain()
        self._account_pool.shutdown(wait=True)
        if self._optimize_pool is not None:
            self._optimize_pool.shutdown(wait=False, cancel_futures=True)


def _settled(ticket: Ticket) -> Ticket:
    """The ticket with the optimiser's exact figures (OptimizeOutcome.settle), computed here,
    off the request path; if that fails, the estimates stay and the failure is logged."""
    try:
        final = ticket.settle()
    except Exception:
        logger.exception("headroom: flow %s: exact token counts failed; estimates recorded",
                         ticket.info.flow_id)
        return replace(ticket, settle=None)
    after = final.tokens_after if final.changed else final.tokens_before
    return replace(ticket, tokens_before=final.tokens_before, tokens_after=after,
                   transforms=final.transforms, settle=None)


_CONTENT_FIELDS = ("system", "instructions", "messages", "input")


def _message_content(body: bytes) -> dict[str, Any] | None:
    """The request's content (system, instructions, messages, input) for --log-messages."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    return {k: doc[k] for k in _CONTENT_FIELDS if k in doc} or None


def _ms_since(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0
