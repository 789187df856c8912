"""The request optimiser the pipeline runs in a worker thread: LLMLingua (opt-in) → compression
of tool outputs → context fitting. Each stage fails open on its own; the order follows
DESIGN.md (compress new tool outputs, then fit the window) and issue 8 (LLMLingua before both).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from .ccr import CCRStore, content_hash, marker_hash
from .compression.engine import CompressionConfig, HintProvider, compress_request
from .compression.markers import has_marker
from .fitting.compress_first import engine_compress_harder
from .fitting.manager import FitConfig, fit_request
from .fitting.windows import output_reserve
from .fitting.toin import Toin, ToinHints, output_signature
from .pipeline import OptimizeOutcome
from .records import TransformSummary
from .settings import Settings
from .storage.base import Storage
from .tokens import count_request

if TYPE_CHECKING:
    from .ml.llmlingua import LLMLinguaService
    from .wire.common import ProviderRequest

log = logging.getLogger("headroom")

# LLMLingua gets this share of the request's time budget; compression and fitting, which
# follow it and are far cheaper, keep the rest, so a slow model does not cost them their turn.
PROSE_SHARE = 0.6
UNBUDGETED_PROSE_S = 30.0  # --compression-budget-ms 0: no request budget, the model still has one
_PROSE_FAILURES = frozenset({"timeout", "error", "too_large", "placeholders_lost"})

def summarise(kinds: list[tuple[str, int, int]]) -> tuple[TransformSummary, ...]:
    """One summary per transform kind, in first-seen order."""
    merged: dict[str, list[int]] = {}
    for kind, before, after in kinds:
        entry = merged.setdefault(kind, [0, 0, 0])
        entry[0] += before
        entry[1] += after
        entry[2] += 1
    return tuple(TransformSummary(k, b, a, n) for k, (b, a, n) in merged.items())


class RequestOptimizer:
    """Implements the pipeline's `Optimizer` protocol over the core's transforms."""

    def __init__(self, settings: Settings, ccr: CCRStore, fit_storage: Storage,
                 toin: Toin | None = None, llmlingua: "LLMLinguaService | None" = None) -> None:
        self.settings = settings
        self.ccr = ccr
        self.fit_storage = fit_storage
        self.toin = toin
        self.llmlingua = llmlingua
        self.compression = CompressionConfig.from_settings(settings)
        self.fit_config = FitConfig.from_settings(settings)
        self._learned: dict[tuple[str, str], None] = {}  # (tenant, hash) TOIN already counted
        self._learned_lock = threading.Lock()
        self._hints: dict[tuple[str, str], ToinHints] = {}  # (tenant, content hash): TOIN's answer

    reports_progress = True

    def optimize(self, request: "ProviderRequest", tenant: str,
                 headers: Any = None, progress: dict | None = None) -> OptimizeOutcome:
        endpoint = request.endpoint
        started = time.monotonic()
        budget_s = (self.settings.compression_budget_ms or 0) / 1000 or None
        deadline = started + budget_s if budget_s else None
        if progress is not None and isinstance(progress.get("deadline"), float):
            # The pipeline's deadline: its clock started before this job waited in the pool, and
            # output it no longer waits for must not be remembered as sent (engine's late rule).
            deadline = progress["deadline"]
        done: list[tuple[str, int, int]] = []
        notes: list[str] = []
        changed = False
        before: int | None = None
        if self.llmlingua is not None and self.llmlingua.ready:
            before = count_request(request.doc, endpoint)  # the pass changes what the engine counts
            prose_s = budget_s * PROSE_SHARE if budget_s else UNBUDGETED_PROSE_S
            changed |= self._prose(request, tenant, done, notes, prose_s)
        elif self.llmlingua is not None:  # loading, or failed: the request passes without it
            notes.append(f"llmlingua: model {self.llmlingua.state}; not applied")

        originals: dict[int, list] = {}  # message index -> its tool outputs as the client sent them
        for o in request.tool_outputs() if self.toin else ():
            originals.setdefault(o.message_index, []).append(o)
        hints = self._hint_provider(tenant)
        report = compress_request(request, tenant=tenant, ccr=self.ccr, config=self.compression,
                                  deadline=deadline, hints=hints, exact=False)
        changed |= report.changed
        later = {p.index for p in report.pending}  # estimated counts: learnt from exact ones in _settle
        for k, t in enumerate(report.transforms):
            done.append((t.kind, t.tokens_before, t.tokens_after))
            if k not in later and self.toin is not None and t.tool_name and t.message_index in originals:
                self._learn(tenant, t, originals[t.message_index])
        notes += [f"compression: {e}" for e in report.errors]
        if report.timed_out:
            notes.append("compression: time budget reached; remaining outputs left as they were")

        # Past the pipeline's deadline (and not known to be over the window by then), the pipeline
        # has stopped waiting and sent the original: fitting it now would be work for nothing.
        gave_up = progress is not None and isinstance(progress.get("deadline"), float) \
            and time.monotonic() > progress["deadline"]
        if gave_up:
            return OptimizeOutcome(False, report.tokens_before, report.tokens_before,
                                   notes=tuple(notes) + ("past the deadline: fitting skipped",))
        if progress is not None and self._over_window(request, report.tokens_after, headers):
            progress["must_fit"] = True
        harder = engine_compress_harder(endpoint, tenant=tenant, ccr=self.ccr,
                                        config=self.compression, model=request.model, hints=hints)
        fit = fit_request(request, tenant=tenant, ccr=self.ccr, state_storage=self.fit_storage,
                          config=self.fit_config, headers=headers,
                          toin=self.toin.view(tenant, self.ccr) if self.toin else None,
                          compress_harder=harder, deadline=deadline,
                          tokens_hint=report.tokens_after)
        counted = before is not None
        before = report.tokens_before if before is None else before
        after = report.tokens_after
        if fit.fitted:
            changed = True
            done.append(("fit", fit.tokens_before, fit.tokens_after))
            notes.append(f"fitting: {fit.dropped_units} unit(s) left out "
                         f"({fit.newly_dropped} new), strategy {fit.strategy}")
            after = fit.tokens_after
        if not fit.fits:
            notes.append(f"fitting: request still exceeds the {fit.window}-token window")
        outcome = OptimizeOutcome(changed, before, after if changed else before,
                                  summarise(done), tuple(notes))
        if report.pending:  # outputs seen for the first time are counted after the request left
            outcome = dataclasses.replace(outcome, settle=functools.partial(
                self._settle, outcome, report, tenant, originals, counted))
        return outcome

    def _settle(self, outcome: OptimizeOutcome, report: Any, tenant: str, originals: dict,
                counted: bool) -> OptimizeOutcome:
        """`outcome` with exact counts where the engine decided on estimates (OptimizeOutcome.
        settle; called off the request path), and TOIN taught with them."""
        exact = report.settled()
        extra: dict[str, int] = {}
        for p in report.pending:
            t = exact.transforms[p.index]
            extra[t.kind] = extra.get(t.kind, 0) + t.tokens_before - report.transforms[p.index].tokens_before
            if self.toin is not None and t.tool_name and t.message_index in originals:
                self._learn(tenant, t, originals[t.message_index])
        transforms = tuple(dataclasses.replace(s, tokens_before=s.tokens_before + extra.get(s.kind, 0))
                           for s in outcome.transforms)
        before = outcome.tokens_before + (0 if counted else exact.tokens_before - report.tokens_before)
        return dataclasses.replace(outcome, tokens_before=before, transforms=transforms, settle=None)

    def _prose(self, request: "ProviderRequest", tenant: str, done: list, notes: list,
               deadline_s: float) -> bool:
        from .ml.prose_pass import compress_prose

        try:  # the pass is async (it awaits the model's worker); this is a worker thread
            records = asyncio.run(compress_prose(request, tenant=tenant, ccr=self.ccr,
                                                 service=self.llmlingua, settings=self.settings,
                                                 deadline_s=deadline_s))
        except Exception as e:  # fail open: the other transforms still run
            log.exception("headroom: LLMLingua pass failed")
            notes.append(f"llmlingua: failed ({type(e).__name__}: {e})")
            return False
        changed = False
        for r in records:
            if r.changed:
                changed = True
                done.append(("llmlingua", r.tokens_before, r.tokens_after))
            elif r.outcome in _PROSE_FAILURES or r.outcome.startswith("store_error"):
                # fail open, and say why (DESIGN.md rule 6): the original of this one went out
                notes.append(f"llmlingua: {r.outcome} on a {r.tokens_before}-token "
                             f"{r.target.replace('_', ' ')}; original kept")
        return changed

    def _hint_provider(self, tenant: str) -> HintProvider | None:
        """TOIN's hints for the engine. TOIN fixes them per content hash on first ask; they are
        kept here too, so a re-sent history costs no storage read or signature per output."""
        toin = self.toin
        if toin is None:
            return None

        def provide(tool_name: str, text: str, digest: str) -> ToinHints:
            key = (tenant, digest)
            with self._learned_lock:
                hit = self._hints.get(key)
            if hit is not None:
                return hit
            try:
                # A rendering the client sent back is never compressed again: no hints to fix,
                # and its signature is no output's pattern.
                hit = ToinHints() if has_marker(text) else \
                    toin.hints(tenant, tool_name, output_signature(text), digest)
            except Exception:  # no hints rather than no compression; kept so renderings stay put
                log.exception("headroom: TOIN hints unavailable")
                hit = ToinHints()
            with self._learned_lock:
                self._hints[key] = hit
                if len(self._hints) > 50_000:
                    self._hints.pop(next(iter(self._hints)))
            return hit

        return provide

    def _over_window(self, request: "ProviderRequest", tokens: int, headers: Any) -> bool:
        limit = self.fit_config.windows.limit_for(request.model, headers)
        return math.ceil(tokens * limit.count_scale) + output_reserve(request.doc) > limit.window

    def _learn(self, tenant: str, t: Any, outputs: list) -> None:
        """TOIN counts each compressed output once (histories are re-sent every turn), under
        the pattern of the original the client sent, and remembers it for the marker's hash."""
        key = (tenant, t.hash)
        with self._learned_lock:
            if key in self._learned:
                return
            self._learned[key] = None
            if len(self._learned) > 50_000:
                self._learned.pop(next(iter(self._learned)))
        # One Anthropic message holds every result of parallel calls: find this one by its hash.
        source = outputs[0] if len(outputs) == 1 else next(
            (o for o in outputs if marker_hash(content_hash(o.text)) == t.hash), None)
        if source is None:
            return
        try:
            self.toin.record_compression(tenant, t.tool_name, output_signature(source.text),
                                         tokens_before=t.tokens_before,
                                         tokens_after=t.tokens_after, content_hash=t.hash)
        except Exception:  # learning must never fail a request
            log.exception("headroom: TOIN could not record a compression")
