"""The spend guard on the request path: rate limits and budgets (admission), and the response
cache, adapted to the pipeline's `Admission` and `ResponseCacheHook` extension points.

Admission charges before forwarding (our token count of the request, the price estimate) and
settles from the provider's usage once the request ended, streamed or not. The cache answers a
repeated request without contacting the provider, replays a streamed request's hit as a valid
SSE stream, and is filled only with successful final answers.

On a remote store (Redis, `offload=True`) admission and the cache lookup run in the spend
guard's threads (`outage.run_off_loop`), so the event loop never waits on a socket; on
diskcache they run inline (microseconds), except for the parsing of large bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..content_decoding import StreamDecoder
from ..errors import LocalResponse, provider_error
from ..tokens import count_request
from ..wire.common import Endpoint
from .budget import BudgetGuard, Refusal as BudgetRefusal
from .outage import run_off_loop
from .ratelimit import RateLimiter
from .response_cache import CachedResponse, ResponseCache, cache_key, cacheable_headers, is_cacheable
from .stream_assembly import StreamAssembler, replay_sse

if TYPE_CHECKING:
    from ..pipeline import ResponseInfo, Ticket
    from ..records import RequestRecord
    from ..usage import StreamTap
    from .semantic_cache import SemanticCache

log = logging.getLogger("headroom")

CACHEABLE = (Endpoint.ANTHROPIC_MESSAGES, Endpoint.OPENAI_CHAT, Endpoint.OPENAI_RESPONSES)
MAX_PARSE_INLINE = 256 << 10  # larger bodies are parsed/counted in a worker thread
_PENDING_LIMIT = 100_000  # entries for flows that never finished are dropped past this
TENANTS_SHOWN = 50  # /stats lists the budgets of this many most recently seen tenants


def _loads(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


async def _off_loop(fn: Callable[..., Any], *args: Any, size: int = 0) -> Any:
    if size < MAX_PARSE_INLINE:
        return fn(*args)
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


@dataclass
class _Charge:
    tenant: str
    tokens: int
    reservation: Any  # budget.Reservation | None


class SpendAdmission:
    """Rate limits (`--rpm`, `--tpm`) and budgets (`--budget`) for provider-bound requests."""

    def __init__(self, limiter: RateLimiter | None, budget: BudgetGuard | None,
                 clock: Callable[[], float] = time.time, *, offload: bool = False) -> None:
        self.limiter = limiter
        self.budget = budget
        self.clock = clock
        self.offload = offload  # storage calls leave the event loop (a remote store)
        self._pending: dict[str, _Charge] = {}
        self._lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()  # tenants, least recent first
        self.refused: Counter[str] = Counter()  # "rpm", "tpm", "budget_exceeded", ...

    @property
    def needs_tokens(self) -> bool:
        return bool((self.limiter and self.limiter.tpm) or self.budget)

    def _estimate(self, ticket: "Ticket") -> tuple[int, str, int | None]:
        doc = _loads(ticket.info.body)
        if not isinstance(doc, dict):
            return max(1, len(ticket.info.body) // 4), "", None
        endpoint = ticket.info.route.endpoint
        model = doc.get("model") if isinstance(doc.get("model"), str) else ""
        max_out = next((doc[k] for k in ("max_tokens", "max_completion_tokens", "max_output_tokens")
                        if isinstance(doc.get(k), int)), None)
        return count_request(doc, endpoint) if endpoint else 0, model, max_out

    async def admit(self, ticket: "Ticket") -> Any:
        if self.limiter is None and self.budget is None:
            return None
        self._saw(ticket.tenant)
        if self.offload:
            return await run_off_loop(self._admit, ticket)
        size = len(ticket.info.body) if self.needs_tokens else 0
        return await _off_loop(self._admit, ticket, size=size)

    def _admit(self, ticket: "Ticket") -> Any:
        """Count, charge the rate limits, reserve the budget: a Refusal, or None to go on."""
        from ..pipeline import Refusal  # the pipeline's value; imported late to avoid a cycle

        provider = ticket.info.route.provider
        tokens, model, max_out = 0, "", None
        if self.needs_tokens and ticket.info.body:
            tokens, model, max_out = self._estimate(ticket)
        now = self.clock()
        if self.limiter is not None:
            verdict = self.limiter.admit(ticket.tenant, tokens, now)
            if not verdict.allowed:
                what = "requests" if verdict.reason == "rpm" else "input tokens"
                limit = self.limiter.rpm if verdict.reason == "rpm" else self.limiter.tpm
                message = (f"headroom: rate limit of {limit} {what} per minute reached for this "
                           f"API key; retry after {verdict.retry_after:.1f} s")
                etype = "rate_limit_error" if provider == "anthropic" else "rate_limit_exceeded"
                self.refused[verdict.reason] += 1
                return Refusal(provider_error(provider, 429, message, etype, verdict.retry_after),
                               "rate_limit")
        reservation = None
        if self.budget is not None:
            outcome = self.budget.reserve(ticket.tenant, self.budget.estimate(model, tokens, max_out))
            if isinstance(outcome, BudgetRefusal):
                if self.limiter is not None:  # the refused request never used its allowance
                    self.limiter.reconcile(ticket.tenant, tokens, 0, now)
                status = 503 if outcome.reason == "budget_unavailable" else 429
                self.refused[outcome.reason] += 1
                return Refusal(provider_error(provider, status, outcome.message, outcome.reason,
                                              outcome.retry_after), "budget")
            reservation = outcome
        with self._lock:
            if len(self._pending) > _PENDING_LIMIT:
                self._pending.clear()
            self._pending[ticket.info.flow_id] = _Charge(ticket.tenant, tokens, reservation)
        return None

    def settle(self, record: "RequestRecord") -> None:
        with self._lock:
            charge = self._pending.pop(record.request_id, None)
        if charge is None:
            return
        if self.limiter is not None and self.limiter.tpm:
            actual = record.usage.total_input if record.status else 0
            self.limiter.reconcile(charge.tenant, charge.tokens, actual or
                                   (charge.tokens if 200 <= record.status < 300 else 0), self.clock())
        if self.budget is not None and charge.reservation is not None:
            self.budget.settle(charge.reservation, record.cost_usd)

    def snapshot(self, tenant: str) -> dict[str, Any]:
        return self.budget.snapshot(tenant) if self.budget is not None else {}

    def _saw(self, tenant: str) -> None:
        with self._lock:
            self._seen[tenant] = None
            self._seen.move_to_end(tenant)
            if len(self._seen) > TENANTS_SHOWN:
                self._seen.popitem(last=False)

    def _global_view(self) -> dict[str, Any] | None:
        """The global scope's figures (None when the budget is per tenant only)."""
        b = self.budget
        if b is None or b.scope == "tenant":
            return None
        view = BudgetGuard(b.storage, b.limit, b.period, "global", b.pricing, clock=b._clock)
        return _figures(view.snapshot(""))

    def budget_section(self, tenants: bool = True) -> dict[str, Any]:
        """/stats (and, without `tenants`, /health): period, limit, next reset, the global
        spend and remaining, and per tenant hash the spend of recently seen tenants.

        A GET carries no key, so no caller's own tenant can be shown; tenants are listed by
        hash, most recent first. Reading stops at the first storage error (no pile of timeouts).
        """
        b = self.budget
        out: dict[str, Any] = {"refused": dict(self.refused)}
        if b is None:
            return out
        out.update(period=b.period, scope=b.scope, limit_usd=b.limit, resets_at=_reset_of(b))
        glob = self._global_view()
        if glob is not None:
            out["global"] = glob
            if "error" in glob:
                return out
        if b.scope == "global":
            return out
        with self._lock:
            seen = list(reversed(self._seen))
        out["tenants_seen"] = len(seen)
        if not tenants:
            return out
        view = BudgetGuard(b.storage, b.limit, b.period, "tenant", b.pricing, clock=b._clock)
        rows: dict[str, Any] = {}
        for tenant in seen:
            rows[tenant] = _figures(view.snapshot(tenant))
            if "error" in rows[tenant]:
                break
        out["tenants"] = rows
        return out

    def limits_section(self) -> dict[str, Any]:
        """/stats: the configured rate limits and how often each refused."""
        lim = self.limiter
        return {"rpm": lim.rpm if lim else 0, "tpm": lim.tpm if lim else 0,
                "refused": {k: v for k, v in self.refused.items() if k in ("rpm", "tpm")}}


def _figures(snap: dict[str, Any]) -> dict[str, Any]:
    keys = ("spend_usd", "reserved_usd", "remaining_usd", "error")
    return {k: (round(snap[k], 8) if isinstance(snap[k], float) else snap[k])
            for k in keys if k in snap}


def _reset_of(budget: BudgetGuard) -> str:
    from .budget import period_bounds

    end = period_bounds(budget.period, budget._clock())[1]
    return end.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Pending:
    key: str
    endpoint: Endpoint
    tenant: str
    doc: Any  # kept only for the semantic cache
    assembler: StreamAssembler | None = None


class CacheHook:
    """The response cache (and the opt-in semantic cache in front of it) for the pipeline."""

    def __init__(self, cache: ResponseCache, semantic: "SemanticCache | None" = None, *,
                 offload: bool = False) -> None:
        self.cache = cache
        self.semantic = semantic
        self.offload = offload  # the lookup leaves the event loop (a remote store)
        self._pending: dict[str, _Pending] = {}
        self._lock = threading.Lock()
        # hits, semantic_hits, misses, stored, not_cacheable (tool use, error, cut stream)
        self.counts: Counter[str] = Counter()

    def section(self) -> dict[str, Any]:
        """/stats: lookups and fills since start, and the cache's bounds."""
        return {"ttl_s": self.cache.ttl, "max_entries": self.cache.max_entries,
                "semantic": self.semantic is not None,
                **{k: self.counts[k] for k in ("hits", "semantic_hits", "misses", "stored",
                                               "not_cacheable")}}

    def _find(self, ticket: "Ticket") -> tuple[str, Any, CachedResponse | None] | None:
        """(key, parsed body, stored answer or None); None for a body that is not an object."""
        doc = _loads(ticket.info.body)
        if not isinstance(doc, dict):
            return None
        key = cache_key(ticket.tenant, ticket.info.route.endpoint, doc)
        return key, doc, self.cache.lookup(key)

    async def lookup(self, ticket: "Ticket") -> LocalResponse | None:
        info = ticket.info
        endpoint = info.route.endpoint
        if info.method != "POST" or endpoint not in CACHEABLE or not info.body:
            return None
        if self.offload:
            found = await run_off_loop(self._find, ticket)
        else:
            found = await _off_loop(self._find, ticket, size=len(info.body))
        if found is None:
            return None
        key, doc, hit = found
        if hit is None and self.semantic is not None:
            hit = await asyncio.get_running_loop().run_in_executor(
                None, self.semantic.lookup, ticket.tenant, endpoint, doc)
            self.counts["semantic_hits"] += hit is not None
        self.counts["hits" if hit is not None else "misses"] += 1
        if hit is None:
            with self._lock:
                if len(self._pending) > _PENDING_LIMIT:
                    self._pending.clear()
                self._pending[info.flow_id] = _Pending(
                    key, endpoint, ticket.tenant, doc if self.semantic is not None else None)
            return None
        return self._replay(hit, endpoint, doc.get("stream") is True)

    @staticmethod
    def _replay(hit: CachedResponse, endpoint: Endpoint, stream: bool) -> LocalResponse:
        headers = [(k, v) for k, v in hit.headers
                   if k.lower() not in ("content-type", "content-length", "content-encoding")]
        headers.append(("x-headroom-cache", "hit"))
        if stream:
            body = replay_sse(endpoint, json.loads(hit.body))
            headers += [("content-type", "text/event-stream; charset=utf-8"),
                        ("cache-control", "no-cache")]
        else:
            body = hit.body
            headers.append(("content-type", "application/json"))
        return LocalResponse(hit.status, tuple(headers), body)

    def observe_stream(self, ticket: "Ticket", tap: "StreamTap") -> None:
        """Assemble a streamed miss's final message as its events pass, to cache it after."""
        with self._lock:
            pending = self._pending.get(ticket.info.flow_id)
        if pending is None:
            return
        pending.assembler = StreamAssembler(pending.endpoint)
        tap.observers.append(pending.assembler.feed)

    def store(self, ticket: "Ticket", response: "ResponseInfo") -> None:
        with self._lock:
            pending = self._pending.pop(ticket.info.flow_id, None)
        if pending is None:
            return
        if response.status != 200:
            self.counts["not_cacheable"] += 1
            return
        try:
            doc = self._final_body(pending, response)
            if doc is None or not is_cacheable(pending.endpoint, response.status, doc):
                self.counts["not_cacheable"] += 1
                return
            body = json.dumps(doc, ensure_ascii=False).encode()
            self.cache.store(pending.key, CachedResponse(
                200, cacheable_headers(response.headers), body, time.time()))
            self.counts["stored"] += 1
            if self.semantic is not None and pending.doc is not None:
                self.semantic.add(pending.tenant, pending.endpoint, pending.doc, pending.key)
        except Exception:  # the cache must never fail a request
            log.exception("headroom: response cache fill failed for flow %s", ticket.info.flow_id)

    @staticmethod
    def _final_body(pending: _Pending, response: "ResponseInfo") -> Any:
        if pending.assembler is not None:
            return pending.assembler.result()
        body = response.body
        if body is None:
            return None
        encoding = response.headers.get("content-encoding", "")
        if encoding and encoding.lower() != "identity":
            try:
                decoder = StreamDecoder(encoding)
                body = decoder.feed(body) + decoder.flush()
            except ValueError:
                pass  # mitmproxy already decoded it
        return _loads(body)

