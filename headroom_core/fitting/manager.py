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
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from .. import tokens
from ..settings import Settings, parse_weights
from ..storage.base import Storage
from ..wire.common import Endpoint
from .features import FeatureCache, UnitFeatures
from .render import CONTEXT_KIND, build_marker, marker_messages, transcript
from .scoring import ScoringConfig, build_query, score_units
from .state import STATE_TTL_S, FitState, FitStateStore, conversation_id
from .toin import ToinView
from .units import Conversation, Unit, message_shape, split_conversation
from .windows import ModelWindows, output_reserve

log = logging.getLogger("headroom.fitting")

# Receives deep copies of one unit's messages, returns them with tool results compressed harder
# (same number of messages, same roles and call ids). Must be deterministic (DESIGN.md rule 2).
CompressHarder = Callable[[list], list]

MARKER_TOKENS_ESTIMATE = 120  # the marker message(s), counted exactly once built
HARDER_CACHE_UNITS = 4000
CCR_REFRESH_S = 600.0  # re-store an unchanged transcript this often (keeps its CCR entry alive)


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


@dataclass(frozen=True)
class FitReport:
    fitted: bool  # fitting changed the request
    tokens_before: int  # o200k (or the model's encoding) over the whole request, unscaled
    tokens_after: int
    dropped_units: int  # units left out of this request (sticky ones included)
    marker_hash: str | None
    compress_first_savings: int
    sticky_reused: bool  # decisions of earlier turns were re-applied
    newly_dropped: int = 0
    dropped_messages: int = 0
    window: int = 0
    reserve: int = 0
    fits: bool = True
    strategy: str = ""  # "intelligent", "position", "rolling"
    semantic_method: str = "off"  # "embeddings", "bm25", "off"
    reason: str = ""


class RollingWindow:
    """Drops the oldest droppable units first."""

    name = "rolling"
    kept_note = "oldest dropped first, recent turns kept"

    def drop_order(self, candidates: Sequence[int], feats: Sequence[UnitFeatures], query: str, *,
                   toin: ToinView | None, deadline: float | None) -> tuple[list[int], str]:
        return list(candidates), "off"


class IntelligentContextManager:
    """Drops the lowest-scoring droppable units first (scoring.py); ties go oldest first."""

    kept_note = "errors and recent turns kept"

    def __init__(self, scoring: ScoringConfig) -> None:
        self.scoring = scoring
        self.name = "intelligent" if scoring.intelligent else "position"

    def drop_order(self, candidates: Sequence[int], feats: Sequence[UnitFeatures], query: str, *,
                   toin: ToinView | None, deadline: float | None) -> tuple[list[int], str]:
        result = score_units(candidates, feats, query, config=self.scoring, toin=toin,
                             deadline=deadline)
        order = sorted(range(len(candidates)), key=lambda i: (result.scores[i].score, i))
        return [candidates[i] for i in order], result.semantic_method


class _LRU:
    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._entries:
                self._data.popitem(last=False)


class ContextFitter:
    """fit_request with its process-wide caches (unit features, harder renderings, CCR puts)."""

    def __init__(self) -> None:
        self.features = FeatureCache()
        self._fixed = _LRU(256)
        self._harder = _LRU(HARDER_CACHE_UNITS)
        self._puts = _LRU(4096)

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

    def _harder_rendering(self, conv: Conversation, unit: Unit,
                          compress_harder: CompressHarder) -> list | None:
        cached = self._harder.get(unit.uid)
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
            self._harder.put(unit.uid, cached)
        return copy.deepcopy(cached)

    def _store_transcript(self, ccr: ContextStore, tenant: str, conv: Conversation,
                          dropped: Sequence[Unit]) -> str:
        key = (tenant, hashlib.sha256("\x00".join(u.uid for u in dropped).encode()).hexdigest())
        hit = self._puts.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[1] < CCR_REFRESH_S:
            return hit[0]
        digest = ccr.put(tenant, transcript(conv, dropped), kind=CONTEXT_KIND)
        self._puts.put(key, (digest, now))
        return digest

    def fit(self, req: Any, *, tenant: str, ccr: ContextStore, state_storage: Storage,
            config: FitConfig, headers: Mapping[str, str] | None = None,
            toin: ToinView | None = None, compress_harder: CompressHarder | None = None,
            deadline: float | None = None, endpoint: Endpoint | None = None) -> FitReport:
        doc = req.doc
        endpoint = endpoint or getattr(req, "endpoint", None)
        conv = split_conversation(doc, endpoint, config.protect_last_turns) if endpoint else None
        if conv is None:
            return FitReport(False, 0, 0, 0, None, 0, False, reason="no conversation to fit")
        model = doc.get("model") if type(doc.get("model")) is str else None
        limit = config.windows.limit_for(model, headers)
        reserve = output_reserve(doc)
        units = conv.units
        feats = [self.features.features(conv, u, endpoint, model) for u in units]
        fixed = self._fixed_tokens(doc, endpoint, model)
        tokens_before = fixed + sum(f.tokens for f in feats)
        policy: RollingWindow | IntelligentContextManager = (
            IntelligentContextManager(config.scoring) if config.intelligent else RollingWindow())

        store = FitStateStore(state_storage, config.state_ttl)
        conv_id = conversation_id(tenant, endpoint.value, conv.anchor)
        droppable = {u.uid for u in units if u.protected is None}
        saved_state = store.load(tenant, conv_id)
        state = saved_state.restricted_to(droppable)
        dropped, harder = set(state.dropped), set(state.harder)
        originals: dict[int, list] = {}  # position → the unit's messages before compress-first
        savings = 0

        def compress(positions: Sequence[int]) -> int:
            saved = 0
            for pos in positions:
                unit = units[pos]
                rendered = self._harder_rendering(conv, unit, compress_harder)
                if rendered is None:
                    continue
                originals[pos] = conv.items[unit.start:unit.end]
                conv.items[unit.start:unit.end] = rendered  # same length: indices stay valid
                before = feats[pos].tokens
                feats[pos] = self.features.features(conv, unit, endpoint, model, variant=":harder")
                saved += before - feats[pos].tokens
            return saved

        def input_tokens() -> int:
            kept = sum(f.tokens for u, f in zip(units, feats) if u.uid not in dropped)
            return fixed + kept + (MARKER_TOKENS_ESTIMATE if dropped else 0)

        def fits(count: int, ratio: float = 1.0) -> bool:
            return math.ceil(count * limit.count_scale) + reserve <= limit.window * ratio

        harder_on = config.compress_first and compress_harder is not None
        if harder_on and harder:
            savings += compress([p for p, u in enumerate(units) if u.uid in harder - dropped])
        newly_dropped, semantic_method = 0, "off"
        if not fits(input_tokens()):
            candidates = [p for p, u in enumerate(units) if u.protected is None and u.uid not in dropped]
            if harder_on:
                fresh = [p for p in candidates if units[p].tool_results and units[p].uid not in harder]
                savings += compress(fresh)
                harder.update(units[p].uid for p in fresh)
            current = input_tokens()
            if not fits(current, config.target_ratio):
                query = self._query(units, feats)
                order, semantic_method = policy.drop_order(candidates, feats, query, toin=toin,
                                                           deadline=deadline)
                if not dropped:
                    current += MARKER_TOKENS_ESTIMATE
                for pos in order:
                    if fits(current, config.target_ratio):
                        break
                    dropped.add(units[pos].uid)
                    current -= feats[pos].tokens
                    newly_dropped += 1
        new_state = FitState(frozenset(dropped), frozenset(harder))
        if new_state != saved_state:
            store.save(tenant, conv_id, new_state)

        for pos, messages in originals.items():  # dropped units leave in their normal rendering
            if units[pos].uid in dropped:
                conv.items[units[pos].start:units[pos].end] = messages
                savings -= originals_saving(feats[pos], self.features.features(
                    conv, units[pos], endpoint, model))
        gone = [u for u in units if u.uid in dropped]
        if not gone and not originals:
            ok = fits(tokens_before)
            return FitReport(False, tokens_before, tokens_before, 0, None, 0, False,
                             window=limit.window, reserve=reserve, fits=ok, strategy=policy.name,
                             reason="fits" if ok else "over the window with nothing droppable")
        marker_hash, marker_tokens = None, 0
        if gone:
            marker_hash = self._store_transcript(ccr, tenant, conv, gone)
            inserted = marker_messages(conv, build_marker(gone, marker_hash, policy.kept_note))
            marker_tokens = tokens.count_text(
                "\n".join(tokens.request_texts({conv.key: inserted}, endpoint)), model)
            kept_items: list = []
            for unit in units:
                if unit.uid in dropped:
                    if inserted:
                        kept_items.extend(inserted)
                        inserted = []
                else:
                    kept_items.extend(conv.items[unit.start:unit.end])
            conv.items[:] = kept_items  # in place: views over the body see the new list
        tokens_after = fixed + marker_tokens + sum(
            f.tokens for u, f in zip(units, feats) if u.uid not in dropped)
        return FitReport(
            fitted=True, tokens_before=tokens_before, tokens_after=tokens_after,
            dropped_units=len(gone), marker_hash=marker_hash, compress_first_savings=max(0, savings),
            sticky_reused=not state.empty, newly_dropped=newly_dropped,
            dropped_messages=sum(u.size for u in gone), window=limit.window, reserve=reserve,
            fits=fits(tokens_after), strategy=policy.name, semantic_method=semantic_method,
            reason="fitted" if newly_dropped or savings else "sticky")

    def rank(self, doc: dict, endpoint: Endpoint, config: FitConfig, *,
             toin: ToinView | None = None, deadline: float | None = None) -> list[Unit]:
        """The droppable units of a request body in the order fitting would drop them."""
        conv = split_conversation(doc, endpoint, config.protect_last_turns)
        if conv is None:
            return []
        model = doc.get("model") if type(doc.get("model")) is str else None
        feats = [self.features.features(conv, u, endpoint, model) for u in conv.units]
        policy = IntelligentContextManager(config.scoring) if config.intelligent else RollingWindow()
        candidates = [p for p, u in enumerate(conv.units) if u.protected is None]
        order, _ = policy.drop_order(candidates, feats, self._query(conv.units, feats),
                                     toin=toin, deadline=deadline)
        return [conv.units[p] for p in order]

    @staticmethod
    def _query(units: Sequence[Unit], feats: Sequence[UnitFeatures]) -> str:
        """The current task: the newest turns first, then the first user message."""
        recent = [f.text for u, f in zip(reversed(units), reversed(feats)) if u.protected == "recent"]
        first = [f.text for u, f in zip(units, feats) if u.protected == "first_user"]
        return build_query(recent + first)


def originals_saving(harder: UnitFeatures, normal: UnitFeatures) -> int:
    """Tokens compress-first had saved on a unit that was then dropped after all."""
    return normal.tokens - harder.tokens


_FITTER = ContextFitter()


def fit_request(req: Any, *, tenant: str, ccr: ContextStore, state_storage: Storage,
                config: FitConfig, headers: Mapping[str, str] | None = None,
                toin: ToinView | None = None, compress_harder: CompressHarder | None = None,
                deadline: float | None = None, endpoint: Endpoint | None = None) -> FitReport:
    """Make `req` (a ProviderRequest; `req.doc` is changed in place) fit its model's window.

    `deadline` (time.monotonic()) bounds the embedding work of semantic scoring; `endpoint`
    defaults to `req.endpoint`. Never raises for a malformed conversation: it leaves it alone.
    """
    return _FITTER.fit(req, tenant=tenant, ccr=ccr, state_storage=state_storage, config=config,
                       headers=headers, toin=toin, compress_harder=compress_harder,
                       deadline=deadline, endpoint=endpoint)


def drop_order(doc: dict, endpoint: Endpoint, config: FitConfig, *, toin: ToinView | None = None,
               deadline: float | None = None) -> list[Unit]:
    """The droppable units of `doc`, first to be dropped first (for inspection and tests)."""
    return _FITTER.rank(doc, endpoint, config, toin=toin, deadline=deadline)
