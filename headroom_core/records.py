"""What is known about one request once it has ended: the unit of stats, metrics and the log."""

from __future__ import annotations

from dataclasses import dataclass, field

from .usage import Usage


@dataclass(frozen=True)
class TransformSummary:
    """One optimisation applied to a request (a compressor, fitting, LLMLingua)."""

    kind: str  # "json", "log", "search", "diff", "code", "text", "html", "fit", "llmlingua", ...
    tokens_before: int
    tokens_after: int
    count: int = 1


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    tenant: str  # tenancy.tenant_of(): a hash, never the key
    provider: str  # "anthropic" | "openai" | "local"
    endpoint: str  # wire.common.Endpoint value
    model: str
    stream: bool
    status: int
    started_at: float  # unix time
    tokens_before: int = 0  # our count of the client's request
    tokens_after: int = 0  # our count of what was forwarded
    usage: Usage = field(default_factory=Usage)  # the provider's own figures, summed over rounds
    cost_usd: float = 0.0
    cache: str = "off"  # "hit" | "miss" | "off" | "bypass"
    transforms: tuple[TransformSummary, ...] = ()
    retrieval_rounds: int = 0
    retrieved_hashes: tuple[str, ...] = ()
    retrieved_bytes: int = 0
    overhead_ms: float = 0.0  # our own processing time on the request path
    latency_ms: float = 0.0  # client-visible total
    refused: str = ""  # "" | "rate_limit" | "budget"
    error: str = ""  # optimisation or upstream error text (never a key)
    messages: object = None  # request content, only with --log-messages

    @property
    def tokens_saved(self) -> int:
        return max(0, self.tokens_before - self.tokens_after)
