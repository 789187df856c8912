"""The values and extension points of headroom's request path (see pipeline.py): what the
caller hands the core, what the core decides, and the hooks features plug in."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol

from . import accounting
from .errors import LocalResponse
from .records import RequestRecord, TransformSummary
from .routing import Route

if TYPE_CHECKING:
    from .wire.request import ProviderRequest


# --- extension points ------------------------------------------------------------------------

@dataclass(frozen=True)
class OptimizeOutcome:
    """What an Optimizer did. `changed`: it mutated `request.doc` and the new body must be sent."""

    changed: bool
    tokens_before: int
    tokens_after: int
    transforms: tuple[TransformSummary, ...] = ()
    notes: tuple[str, ...] = ()
    # Exact figures too slow for the request path (the token count of a tool output seen for
    # the first time; the decisions were made on an estimate): until called, tokens_before and
    # the transforms' tokens_before are estimates. finish() calls it, in the accounting worker
    # after the response, and records the outcome it returns.
    settle: Callable[[], "OptimizeOutcome"] | None = field(default=None, repr=False, compare=False)


class Optimizer(Protocol):
    """The compression engine. Called in a worker thread; must not touch the event loop.
    `headers` are the client's request headers (read only; e.g. a context-window beta flag).
    Not called for bodies shorter than `min_tokens` bytes: every token is at least one byte,
    so no tool output there reaches the threshold and no context window is exceeded."""

    def optimize(self, request: "ProviderRequest", tenant: str,
                 headers: Mapping[str, str] | None = None,
                 progress: dict | None = None) -> OptimizeOutcome:
        """`progress` (only for optimisers with `reports_progress = True`): the optimiser may set
        progress["must_fit"] = True once it knows the request exceeds its model's window (the
        pipeline then waits longer for it)."""
        ...


@dataclass(frozen=True)
class Refusal:
    response: LocalResponse
    reason: str  # "rate_limit" | "budget"


class Admission(Protocol):
    """Rate limits and budgets: refuse before anything is sent, settle once the cost is known."""

    async def admit(self, ticket: "Ticket") -> Refusal | None: ...

    def settle(self, record: RequestRecord) -> None: ...


class ResponseCacheHook(Protocol):
    """Answer a repeated request from the cache; be offered each finished response."""

    async def lookup(self, ticket: "Ticket") -> LocalResponse | None: ...

    def observe_stream(self, ticket: "Ticket", tap: Any) -> None:
        """A streamed miss: watch its parsed events (tap.observers) to cache the final answer."""
        ...

    def store(self, ticket: "Ticket", response: "ResponseInfo") -> None: ...


# --- values crossing the boundary --------------------------------------------------------------

@dataclass(frozen=True)
class RequestInfo:
    """A request as the client sent it (headers include our private x-headroom-* ones)."""

    flow_id: str
    method: str
    path: str
    headers: Mapping[str, str]  # case-insensitive (mitmproxy Headers) or lower-case names
    body: bytes
    route: Route
    started_at: float  # unix time the request began


@dataclass(frozen=True)
class Ticket:
    """Everything decided about a request on its way out; handed back to finish()."""

    info: RequestInfo
    tenant: str
    bypass: bool = False
    changed: bool = False
    tokens_before: int | None = None  # None: counted at finish time, off the request path
    tokens_after: int | None = None
    model: str = ""
    stream: bool | None = None  # known once the body was parsed on the request path
    transforms: tuple[TransformSummary, ...] = ()
    cache: str = "off"
    refused: str = ""
    error: str = ""  # why optimisation failed (the request went out unchanged)
    notes: tuple[str, ...] = ()
    overhead_ms: float = 0.0
    settle: Callable[[], OptimizeOutcome] | None = field(default=None, repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        """A plain dict for flow.metadata (tnetstring-serialisable)."""
        out: dict[str, Any] = {"provider": self.info.route.provider,
                               "endpoint": self.info.route.endpoint.value
                               if self.info.route.endpoint else "", "tenant": self.tenant,
                               "changed": self.changed, "bypass": self.bypass,
                               "overhead_ms": round(self.overhead_ms, 3)}
        if self.tokens_before is not None:
            out.update(tokens_before=self.tokens_before, tokens_after=self.tokens_after)
            if self.settle is not None:  # OptimizeOutcome.settle: made exact only at finish()
                out["tokens_before_estimated"] = True
        if self.transforms:
            out["transforms"] = [asdict(t) for t in self.transforms]
        for name in ("model", "error", "refused"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.cache != "off":
            out["cache"] = self.cache
        if self.notes:
            out["notes"] = list(self.notes)
        return out


class Action(enum.Enum):
    FORWARD = "forward"  # send the original bytes
    FORWARD_CHANGED = "forward_changed"  # send Decision.body instead
    RESPOND = "respond"  # answer Decision.response, send nothing upstream


@dataclass(frozen=True)
class Decision:
    action: Action
    ticket: Ticket
    body: bytes | None = None
    response: LocalResponse | None = None


@dataclass(frozen=True)
class ResponseInfo:
    """How a request ended. `status` 0: no response (upstream unreachable, client gone)."""

    status: int
    ended_at: float
    headers: Mapping[str, str] = field(default_factory=dict)  # content-type, content-encoding
    body: bytes | None = None  # a buffered response's body as received (still content-encoded)
    tap: accounting.StreamAccount | None = None  # the stream's accounting when streamed
    error: str = ""
    # headroom_retrieve rounds answered within the turn (addons/retrieval.py)
    retrieval_rounds: int = 0
    retrieved_hashes: tuple[str, ...] = ()
    retrieved_bytes: int = 0
