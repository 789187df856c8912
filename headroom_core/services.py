"""Builds what the pipeline's extension points hold from one Settings value: the optimiser
(compression, fitting, LLMLingua), admission (rate limits, budgets), the response cache, the
pricer and the request log, all over the storage backend the settings choose.
"""

from __future__ import annotations

import logging
import threading
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from .ccr import CCRStore
from .settings import Settings, parse_price_pair
from .storage.base import Storage
from .storage.factory import open_storage

if TYPE_CHECKING:
    from .fitting.toin import Toin
    from .ml.llmlingua import LLMLinguaService
    from .pipeline import HeadroomCore
    from .spend.guard import SpendAdmission
    from .spend.pricing import Pricing
    from .spend.request_log import RequestLog
    from .usage import Usage

log = logging.getLogger("headroom")


@dataclass
class Services:
    """The long-lived state of one process, closed together."""

    settings: Settings
    storages: dict[str, Storage] = field(default_factory=dict)
    ccr: CCRStore | None = None
    toin: "Toin | None" = None
    pricing: "Pricing | None" = None
    admission: "SpendAdmission | None" = None
    request_log: "RequestLog | None" = None
    llmlingua: "LLMLinguaService | None" = None
    sinks: list = field(default_factory=list)  # what attach() added to core.sinks
    _toin_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def toin_store(self) -> "Toin":
        """TOIN, opened on first use: by the optimiser's first request or a retrieval answer."""
        with self._toin_lock:
            if self.toin is None:
                from .fitting.toin import Toin

                self.toin = Toin(self.storage("toin"), global_scope=self.settings.toin_global)
            return self.toin

    def learn_retrieval(self, tenant: str, digest: str, query: str) -> None:
        """TOIN learns that the model came back for a compressed tool output (whole, or the
        part matching `query`), under its original's pattern — the one its rendering scores
        with (`Toin.origin`). Called off the event loop; fitting's dropped turns and pasted
        user text name no tool and teach nothing."""
        from .fitting.toin import output_signature

        entry = self.ccr.get(tenant, digest) if self.ccr is not None else None
        if entry is None or not entry.tool_name:
            return
        toin = self.toin_store()
        tool, signature = toin.origin(tenant, entry.hash) or toin.remember_origin(
            tenant, entry.hash, entry.tool_name, output_signature(entry.text))
        toin.record_retrieval(tenant, tool, signature, query=query or None, original=entry.text)

    def storage(self, name: str, size_limit: int = 1 << 30) -> Storage:
        if name not in self.storages:
            self.storages[name] = open_storage(self.settings, name, size_limit)
        return self.storages[name]

    def pricer(self) -> Callable[[str, "Usage"], float]:
        pricing = self.pricing

        def price(model: str, usage: "Usage") -> float:
            return pricing.cost(model, usage)[0] if pricing is not None else 0.0

        price.headroom_pricer = True  # type: ignore[attr-defined]
        return price

    def close(self) -> None:
        if self.request_log is not None:
            self.request_log.close()
        if self.llmlingua is not None:
            self.llmlingua.close()
        for store in self.storages.values():
            try:
                store.close()
            except Exception:  # closing must not stop the others from closing
                log.exception("headroom: closing a store failed")
        self.storages.clear()


def build_services(settings: Settings, *, llmlingua: "LLMLinguaService | None" = None) -> Services:
    """Open stores and build every feature the settings turn on."""
    from .spend.pricing import Pricing

    s = Services(settings)
    s.ccr = CCRStore(s.storage("ccr", settings.ccr_max_bytes), ttl=settings.ccr_ttl)
    s.pricing = Pricing.load(settings.pricing_file or None, parse_price_pair(settings.default_price))
    s.admission = _admission(s)
    if settings.log_file:
        from .spend.request_log import RequestLog

        s.request_log = RequestLog(settings.log_file, settings.log_messages)
    s.llmlingua = llmlingua
    return s


def _admission(s: Services) -> "SpendAdmission | None":
    from .spend.budget import BudgetGuard
    from .spend.guard import SpendAdmission
    from .spend.outage import FailFast
    from .spend.ratelimit import RateLimiter

    st = s.settings
    limiter = None
    if st.rate_limit and (st.rpm or st.tpm):
        limiter = RateLimiter(FailFast(s.storage("ratelimit")), st.rpm, st.tpm)
    budget = None
    if st.budget_usd is not None:
        budget = BudgetGuard(FailFast(s.storage("budget")), st.budget_usd, st.budget_period,
                             st.budget_scope, s.pricing)
    if not (limiter or budget):
        return None
    return SpendAdmission(limiter, budget, offload=bool(st.redis_url))


def cache_hook(s: Services) -> Any:
    from .spend.guard import CacheHook
    from .spend.outage import FailFast
    from .spend.response_cache import ResponseCache

    st = s.settings
    cache = ResponseCache(FailFast(s.storage("cache")), st.cache_ttl, st.cache_max_entries)
    semantic = None
    if st.semantic_cache:
        from .spend.semantic_cache import SemanticCache

        semantic = SemanticCache(cache, float(st.semantic_cache_threshold))
    return CacheHook(cache, semantic, offload=bool(st.redis_url))


def attach(core: "HeadroomCore", settings: Settings, previous: Services | None = None) -> Services:
    """Point the core's extension points at freshly built services (closing `previous`)."""
    from .spend.guard import CacheHook, SpendAdmission

    keep_llm = previous.llmlingua if previous is not None and _same_llm(previous.settings, settings) else None
    if previous is not None:
        if keep_llm is not None:
            previous.llmlingua = None  # handed over, not closed
        previous.close()
    llm = keep_llm
    if llm is None and settings.llmlingua:
        llm = _start_llmlingua(settings)
    s = build_services(settings, llmlingua=llm)
    # Extension points someone else filled (an embedding app, a test) are left to them.
    if core.optimizer is None or isinstance(core.optimizer, LazyOptimizer):
        core.optimizer = LazyOptimizer(lambda: _optimizer(s), llmlingua=llm)
    if core.admission is None or isinstance(core.admission, SpendAdmission):
        core.admission = s.admission
    if core.response_cache is None or isinstance(core.response_cache, CacheHook):
        core.response_cache = cache_hook(s) if settings.cache else None
    if core.pricer is None or getattr(core.pricer, "headroom_pricer", False):
        core.pricer = s.pricer()
    if previous is not None:
        core.sinks = [sink for sink in core.sinks if sink not in previous.sinks]
    if s.request_log is not None:
        s.sinks.append(s.request_log.write)
    core.sinks = [*core.sinks, *s.sinks]
    _stats_sections(core)
    core.stats.add_section("toin", lambda: toin_section(s))
    return s


TOIN_TENANTS_SHOWN = 10
TOIN_PATTERNS_SHOWN = 5


def toin_section(s: Services) -> dict[str, Any]:
    """TOIN's part of /stats: the most active patterns, across tenants with --toin-global,
    else per tenant (by hash, the most recently active tenants first). No output content."""
    toin = s.toin_store()

    def rows(tenant: str) -> list[dict[str, Any]]:
        return [{"tool": p.tool_name, "signature": p.signature, "compressions": p.compressions,
                 "retrievals": p.retrievals, "query_retrievals": p.query_retrievals,
                 "tokens_saved": p.tokens_saved, "top_fields": list(p.top_fields),
                 "importance": round(p.importance, 3)}
                for p in toin.top_patterns(tenant, TOIN_PATTERNS_SHOWN)]

    if s.settings.toin_global:
        return {"scope": "global", "patterns": rows("")}
    tenants = toin.tenants()[::-1][:TOIN_TENANTS_SHOWN]
    return {"scope": "tenant", "tenants": {t: rows(t) for t in tenants}}


def _stats_sections(core: "HeadroomCore") -> None:
    """The spend guard's parts of /stats and /health, read from whatever the core holds now."""
    from .spend.guard import CacheHook, SpendAdmission

    def cache() -> dict[str, Any]:
        hook = core.response_cache
        return hook.section() if isinstance(hook, CacheHook) else {"enabled": False}

    def health_cache() -> dict[str, Any]:
        doc = cache()
        return {k: doc[k] for k in ("hits", "misses", "stored") if k in doc} or doc

    def admission() -> "SpendAdmission | None":
        return core.admission if isinstance(core.admission, SpendAdmission) else None

    def budget(tenants: bool) -> dict[str, Any]:
        adm = admission()
        if adm is None or adm.budget is None:
            return {"enabled": False}
        return adm.budget_section(tenants)

    def limits() -> dict[str, Any]:
        adm = admission()
        if adm is None or adm.limiter is None:
            return {"enabled": False}
        return adm.limits_section()

    core.stats.add_section("response_cache", cache, health=health_cache)
    core.stats.add_section("rate_limit", limits, health=limits)
    core.stats.add_section("budget", lambda: budget(True), health=lambda: budget(False))
    # Budget gauges for /metrics (read at scrape time). Without a budget, the registry (and
    # prometheus_client) is not built here just to say so.
    adm = admission()
    if adm is not None and adm.budget is not None:
        core.metrics.watch_budget(lambda: budget(True))
    elif getattr(core, "_metrics", None) is not None:
        core.metrics.watch_budget(None)


class LazyOptimizer:
    """Builds the optimiser (compressors, fitting, TOIN, the tokenizer) on the first request
    that needs it, in the optimiser's worker thread: start-up stays fast and small.

    `warm` is False until one optimisation finished; the pipeline gives that first one a
    one-time allowance on top of the time budget, so a proxy's first large request is not
    sent uncompressed because imports and the tokenizer were still loading.
    """

    def __init__(self, build: Callable[[], Any],
                 llmlingua: "LLMLinguaService | None" = None) -> None:
        self._build = build
        self.llmlingua = llmlingua  # readable before the build: /health shows its state
        self._real: Any = None
        self._lock = threading.Lock()
        self.warm = False

    reports_progress = True

    def optimize(self, request: Any, tenant: str, headers: Any = None,
                 progress: dict | None = None) -> Any:
        with self._lock:
            if self._real is None:
                self._real = self._build()
        outcome = self._real.optimize(request, tenant, headers=headers, progress=progress)
        self.warm = True
        return outcome

    def warm_up(self) -> None:
        """Load what the first optimisation needs (call from a background thread)."""
        from .tokens import get_encoding

        with self._lock:
            if self._real is None:
                self._real = self._build()
        get_encoding()


def _optimizer(s: Services) -> Any:
    from .optimizer import RequestOptimizer

    return RequestOptimizer(s.settings, s.ccr, s.storage("fitting"), s.toin_store(), s.llmlingua)


def _same_llm(a: Settings, b: Settings) -> bool:
    return (a.llmlingua, a.llmlingua_model, a.llmlingua_device) == \
        (b.llmlingua, b.llmlingua_model, b.llmlingua_device)


def _start_llmlingua(settings: Settings) -> "LLMLinguaService | None":
    """Start loading the model in the background; None (and the warning) when not installed.

    Its progress lines go to stderr, as the request lines do: `headroom proxy` runs mitmdump with
    termlog at warn, which would hide them as info records (and a warning record would show
    twice). A failure is shown even with --quiet.
    """
    from .ml.llmlingua import LLMLinguaService, is_installed, startup_message

    if not is_installed():
        _console_line(startup_message(settings)[1])  # the WARNING line; requests pass without it
        return None
    service: LLMLinguaService

    def progress(message: str) -> None:
        if service.load_error is not None or not settings.quiet:
            _console_line(message)

    service = LLMLinguaService.from_settings(settings, progress=progress)
    service.start_loading()
    return service


def _console_line(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
