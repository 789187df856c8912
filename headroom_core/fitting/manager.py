"""Context fitting: make a request fit its model's window, keeping what matters, losing nothing.

Runs after the request's tool outputs were compressed and before it is forwarded. Trigger:
system + tools + messages (scaled by the model's `count_scale`) + output reserve > window.
Decisions are sticky per conversation (state.py): earlier drops and harder compressions are
re-applied first, and only if the request still does not fit is anything new decided —
compress-first (older tool results compressed harder through the `compress_harder` callback),
then dropping whole units, lowest score first (IntelligentContextManager) or oldest first
(RollingWindow). Dropped units go to the CCR store as one transcript behind one marker.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from .. import tokens
from ..compression.markers import HASH_LEN
from ..settings import Settings, parse_weights
from ..storage.base import Storage
from ..wire.common import Endpoint
from .features import FeatureCache, LazyFeatures, UnitText
from ..lru import LRU
from .policy import DropPolicy, IntelligentContextManager, RollingWindow
from .render import CONTEXT_KIND, build_marker, transcript, unit_transcript
from .scoring import ScoringConfig, build_query
from .state import STATE_TTL_S, FitState, FitStateStore, conversation_id
from .toin import ToinView
from .units import Conversation, Unit, conversation_anchor, message_shape, split_conversation
from .windows import ModelWindows, output_reserve
from .work import MARKER_TOKENS_ESTIMATE, FitReport, FitWork

log = logging.getLogger("headroom.fitting")

# Receives deep copies of one unit's messages, returns them with tool results compressed harder
# (same number of messages, same roles and call ids). Must be deterministic (DESIGN.md rule 2).
CompressHarder = Callable[[list], list]

HARDER_CACHE_UNITS = 4000
CCR_REFRESH_S = 600.0  # re-store an unchanged transcript this often (keeps its CCR entry alive)
TRANSCRIPT_PARTS = 2000  # dropped units' transcript parts kept (a few conversations' worth)


class ContextStore(Protocol):
    """What fitting needs of the CCR store."""

    def put(self, tenant: str, original: str, *, kind: str, tool_name: str | None = None) -> str: ...


@dataclass(frozen=True)
class FitConfig:
    windows: ModelWindows = field(default_factory=ModelWindows)
    compress_first: bool = True
    intelligent: bool = True  # False: RollingWindow (oldest first)
    scoring: ScoringConfig = field(default_factory=ScoringConfig)
    protect_last_turns: int = 4
    state_ttl: float = STATE_TTL_S
    # When fitting has to act it brings the request down to this share of the window, so the
    # next turns fit again without new decisions (each decision breaks the cached prefix once).
    target_ratio: float = 0.85

    @classmethod
    def from_settings(cls, settings: Settings) -> "FitConfig":
        return cls(
            windows=ModelWindows(settings.model_limits, settings.default_context_window),
            compress_first=settings.compress_first,
            intelligent=settings.intelligent_context,
            scoring=ScoringConfig.from_weights(parse_weights(settings.scoring_weights),
                                               intelligent=settings.intelligent_scoring),
            protect_last_turns=settings.protect_last_turns)


class ContextFitter:
    """fit_request with its process-wide caches (unit features, harder renderings, CCR puts)."""

    def __init__(self) -> None:
        self.features = FeatureCache()
        self._fixed = LRU(256)
        self._harder = LRU(HARDER_CACHE_UNITS)
        self._puts = LRU(4096)
        self._parts = LRU(TRANSCRIPT_PARTS)

    def _fixed_tokens(self, doc: Mapping[str, Any], endpoint: Endpoint, model: str | None) -> int:
        """System prompt, instructions and tool definitions: the part every turn repeats."""
        fixed = {k: doc[k] for k in ("system", "instructions", "tools", "functions") if k in doc}
        text = "\n".join(tokens.request_texts(fixed, endpoint))
        key = (hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest(),
               tokens.encoding_name_for_model(model))
        count = self._fixed.get(key)
        if count is None:
            count = tokens.count_text(text, model)
            self._fixed.put(key, count)
        return count

    def harder_rendering(self, tenant: str, conv: Conversation, unit: Unit,
                         compress_harder: CompressHarder) -> list | None:
        """The unit compressed harder, cached per tenant and unit id (the callback is
        deterministic). A rendering's markers name originals in its tenant's CCR namespace,
        and the callback re-runs now and then so it refreshes those entries."""
        key = (tenant, unit.uid)
        hit = self._harder.get(key)
        now = time.monotonic()
        cached = hit[0] if hit is not None and now - hit[1] < CCR_REFRESH_S else None
        if cached is None:
            original = conv.items[unit.start:unit.end]
            try:
                rendered = compress_harder(copy.deepcopy(original))
            except Exception:  # fail open: this unit keeps its normal rendering
                log.exception("compress-first failed for a unit; keeping its rendering")
                return None
            if (not isinstance(rendered, list) or len(rendered) != len(original) or
                    [message_shape(conv.fmt, m) for m in rendered] !=
                    [message_shape(conv.fmt, m) for m in original]):
                log.warning("compress-first changed a unit's shape; keeping its rendering")
                return None
            cached = rendered
            self._harder.put(key, (cached, now))
        return copy.deepcopy(cached)

    def _store_transcript(self, ccr: ContextStore, tenant: str, conv: Conversation,
                          dropped: Sequence[Unit]) -> str:
        key = (id(ccr), tenant, hashlib.sha256("\x00".join(u.uid for u in dropped).encode()).hexdigest())
        hit = self._puts.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[1] < CCR_REFRESH_S:
            return hit[0]
        store = getattr(ccr, "ensure", None) or ccr.put  # ensure: no rewrite of a fresh entry
        digest = store(tenant, transcript(conv, dropped, lambda unit: self._unit_transcript(conv, unit)),
                       kind=CONTEXT_KIND)
        self._puts.put(key, (digest, now))
        return digest

    def _unit_transcript(self, conv: Conversation, unit: Unit) -> str:
        """A dropped unit's transcript part, kept by unit id and place: a re-sent history's
        drops are stored again (another CCR store, an expired put) without rendering them."""
        key = (unit.uid, unit.start)
        part = self._parts.get(key)
        if part is None:
            part = unit_transcript(conv, unit)
            self._parts.put(key, part)
        return part

    def fit(self, req: Any, *, tenant: str, ccr: ContextStore, state_storage: Storage,
            config: FitConfig, headers: Mapping[str, str] | None = None,
            toin: ToinView | None = None, compress_harder: CompressHarder | None = None,
            deadline: float | None = None, endpoint: Endpoint | None = None,
            tokens_hint: int | None = None) -> FitReport:
        doc = req.doc
        endpoint = endpoint or getattr(req, "endpoint", None)
        if tokens_hint is not None and endpoint is not None:
            quick = self._quick_fit(doc, endpoint, tenant, state_storage, config, headers, tokens_hint)
            if quick is not None:
                return quick
        conv = split_conversation(doc, endpoint, config.protect_last_turns) if endpoint else None
        if conv is None:
            return FitReport(False, 0, 0, 0, None, 0, False, reason="no conversation to fit")
        model = doc.get("model") if type(doc.get("model")) is str else None
        work = FitWork(self, tenant, conv, endpoint, model, config.windows.limit_for(model, headers),
                       output_reserve(doc), self._fixed_tokens(doc, endpoint, model))
        policy: DropPolicy = (IntelligentContextManager(config.scoring) if config.intelligent
                              else RollingWindow())
        store = FitStateStore(state_storage, config.state_ttl)
        conv_id = conversation_id(tenant, endpoint.value, conv.anchor)
        saved = store.load(tenant, conv_id)
        sticky = saved.restricted_to({u.uid for u in conv.units if u.protected is None})
        work.dropped, work.harder = set(sticky.dropped), set(sticky.harder)
        harder = compress_harder if config.compress_first else None

        if harder and work.harder:  # re-apply earlier decisions first: same bytes as last turn
            work.compress([p for p, u in enumerate(conv.units)
                           if u.uid in work.harder and u.uid not in work.dropped], harder)
        newly_dropped, semantic_method, acted = 0, "off", False
        if not work.fits(work.input_tokens()):
            acted = True
            newly_dropped, semantic_method = self._decide(work, policy, config, harder, toin, deadline)
        for pos in [p for p in work.originals if conv.units[p].uid in work.dropped]:
            work.restore(pos)  # a dropped unit is stored in its normal rendering
        gone = [u for u in conv.units if u.uid in work.dropped]
        if not gone and not work.originals:
            ok = work.fits(work.tokens_before)
            return work.report(False, policy, reason="fits" if ok else "over the window, nothing droppable")
        marker_hash = None
        if gone:
            try:
                marker_hash = self._store_transcript(ccr, tenant, conv, gone)
            except Exception:  # nothing is dropped without its original stored (rule 4)
                log.exception("context fitting: storing the dropped messages failed; not fitting")
                for pos in list(work.originals):
                    work.restore(pos)
                return work.report(False, policy, reason="CCR store unavailable: request left as is")
            work.apply_drops(gone, build_marker(gone, marker_hash[:HASH_LEN], policy.kept_note))
        new_state = FitState(frozenset(work.dropped), frozenset(work.harder))
        if new_state != saved:
            store.save(tenant, conv_id, new_state)
        return work.report(True, policy, marker_hash=marker_hash and marker_hash[:HASH_LEN],
                           sticky_reused=not sticky.empty, newly_dropped=newly_dropped,
                           semantic_method=semantic_method,
                           reason="fitted" if acted else "earlier decisions re-applied")

    def _quick_fit(self, doc: dict, endpoint: Endpoint, tenant: str, state_storage: Storage,
                   config: FitConfig, headers: Mapping[str, str] | None,
                   tokens_hint: int) -> FitReport | None:
        """The common case without cutting the conversation: it fits (by the caller's count)
        and has no earlier decisions to re-apply. None: take the full path."""
        model = doc.get("model") if type(doc.get("model")) is str else None
        limit = config.windows.limit_for(model, headers)
        reserve = output_reserve(doc)
        if math.ceil(tokens_hint * limit.count_scale) + reserve > limit.window:
            return None
        anchor = conversation_anchor(doc, endpoint)
        if anchor is None:
            return FitReport(False, tokens_hint, tokens_hint, 0, None, 0, False, window=limit.window,
                             reserve=reserve, reason="no conversation to fit")
        conv_id = conversation_id(tenant, endpoint.value, anchor)
        if not FitStateStore(state_storage, config.state_ttl).load(tenant, conv_id).empty:
            return None
        strategy = IntelligentContextManager(config.scoring).name if config.intelligent else "rolling"
        return FitReport(False, tokens_hint, tokens_hint, 0, None, 0, False, window=limit.window,
                         reserve=reserve, strategy=strategy, reason="fits")

    def _decide(self, work: "FitWork", policy: DropPolicy, config: FitConfig,
                harder: CompressHarder | None, toin: ToinView | None,
                deadline: float | None) -> tuple[int, str]:
        """New decisions for a request over its window: compress-first, then drops."""
        units = work.conv.units
        candidates = [p for p, u in enumerate(units) if u.protected is None and u.uid not in work.dropped]
        if harder:
            fresh = [p for p in candidates if units[p].tool_results and units[p].uid not in work.harder]
            work.compress(fresh, harder)
            work.harder.update(units[p].uid for p in fresh)
        current = work.input_tokens()
        if work.fits(current, config.target_ratio):
            return 0, "off"
        order, method = policy.drop_order(candidates, work.features(), self._query(units, work.counted),
                                          toin=toin, deadline=deadline)
        if not work.dropped:
            current += MARKER_TOKENS_ESTIMATE
        newly = 0
        for pos in order:
            if work.fits(current, config.target_ratio):
                break
            work.dropped.add(units[pos].uid)
            current -= work.counted[pos].tokens
            newly += 1
        return newly, method

    def rank(self, doc: dict, endpoint: Endpoint, config: FitConfig, *,
             toin: ToinView | None = None, deadline: float | None = None) -> list[Unit]:
        """The droppable units of a request body in the order fitting would drop them."""
        conv = split_conversation(doc, endpoint, config.protect_last_turns)
        if conv is None:
            return []
        model = doc.get("model") if type(doc.get("model")) is str else None
        counted = [self.features.counted(conv, u, endpoint, model) for u in conv.units]
        feats = LazyFeatures(self.features, conv, endpoint, model, [""] * len(conv.units))
        policy: DropPolicy = (IntelligentContextManager(config.scoring) if config.intelligent
                              else RollingWindow())
        candidates = [p for p, u in enumerate(conv.units) if u.protected is None]
        order, _ = policy.drop_order(candidates, feats, self._query(conv.units, counted),
                                     toin=toin, deadline=deadline)
        return [conv.units[p] for p in order]

    @staticmethod
    def _query(units: Sequence[Unit], feats: Sequence[UnitText]) -> str:
        """The current task: the newest human exchanges, the first user message, then the
        newest tool steps (deep in an agent loop the first message is usually the task)."""
        recent = [(u, f.text) for u, f in zip(reversed(units), reversed(feats)) if u.protected == "recent"]
        first = [f.text for u, f in zip(units, feats) if u.protected == "first_user"]
        said = [text for u, text in recent if u.kind == "exchange"]
        done = [text for u, text in recent if u.kind != "exchange"]
        return build_query(said + first + done)


_FITTER = ContextFitter()


def fit_request(req: Any, *, tenant: str, ccr: ContextStore, state_storage: Storage,
                config: FitConfig, headers: Mapping[str, str] | None = None,
                toin: ToinView | None = None, compress_harder: CompressHarder | None = None,
                deadline: float | None = None, endpoint: Endpoint | None = None,
                tokens_hint: int | None = None) -> FitReport:
    """Make `req` (a ProviderRequest; `req.doc` is changed in place) fit its model's window.

    `deadline` (time.monotonic()) bounds the embedding work of semantic scoring; `endpoint`
    defaults to `req.endpoint`. `tokens_hint`: the caller's `count_request` of the body as it
    stands; when it fits and the conversation has no earlier decisions, fitting returns at once
    (~1 ms instead of cutting and hashing the whole history). Never raises for a malformed
    conversation: it leaves it alone.
    """
    return _FITTER.fit(req, tenant=tenant, ccr=ccr, state_storage=state_storage, config=config,
                       headers=headers, toin=toin, compress_harder=compress_harder,
                       deadline=deadline, endpoint=endpoint, tokens_hint=tokens_hint)


def drop_order(doc: dict, endpoint: Endpoint, config: FitConfig, *, toin: ToinView | None = None,
               deadline: float | None = None) -> list[Unit]:
    """The droppable units of `doc`, first to be dropped first (for inspection and tests)."""
    return _FITTER.rank(doc, endpoint, config, toin=toin, deadline=deadline)
