"""A fake provider that bills like the real ones: prompt caching as Anthropic and OpenAI
document it, usage in their shapes, cost at their published prices. For scripts/bench_billing.py.

Plugged into tests/fake_provider.py as its `handler`:

    bills = CachingProvider(clock=lambda: t)
    provider.handler = bills.reply
    ... requests ...
    bills.bills  # one Bill per request: usage and USD

Anthropic (docs: "Prompt caching"): the prompt is tools, then system, then messages, cut into
blocks (a tool definition, a system block, a message content block). A block carrying
`cache_control` is a breakpoint (at most 4). The cache key of a prefix is a hash of every block
up to it, `cache_control` itself left out (moving the breakpoint does not change the content).
For each breakpoint the provider looks for the longest cached prefix ending at a block boundary
no more than 20 blocks before it: those tokens are a cache read (0.1x the input price). The
tokens from there to the last breakpoint are a cache write (5-minute TTL, 1.25x), when that
prefix reaches the model's minimum (1,024 tokens for Sonnet/Opus, 2,048 for Haiku). The rest is
uncached input. A read refreshes the entry's 5 minutes.

OpenAI (docs: "Prompt caching"): automatic for prompts of 1,024 tokens or more. The prompt is
the tools, then the messages (Chat Completions) or instructions, tools, then input (Responses),
as one token sequence; the cached part is the longest prefix of 1,024 + 128k tokens that an
earlier request (same model, within its lifetime, 5 minutes idle here) began with. Cached input
is billed at the model's published discount: gpt-4o 0.5x, gpt-4.1 0.25x, gpt-5 0.1x of the input
price (scripts/bench_billing.py bills its OpenAI sessions as gpt-4o and again as gpt-4.1).

Token counts are tiktoken o200k_base over each block's compact JSON (headroom_core.tokens), the
same counter for direct and proxied traffic; per-message framing tokens are not simulated.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable

from fake_provider import (Recorded, Reply, anthropic_events, anthropic_message, openai_chat,
                           openai_chat_events, openai_response, openai_response_events)
from headroom_core.tokens import count_text, get_encoding

TTL_S = 300.0
ANTHROPIC_LOOKBACK = 20
ANTHROPIC_MAX_BREAKPOINTS = 4
OPENAI_MIN = 1024
OPENAI_STEP = 128
OUTPUT_TOKENS = 300  # every reply: the same output, so output cost is equal on both paths


@dataclass(frozen=True)
class Price:
    """USD per million tokens, and the cache multipliers of the input price."""

    input: float
    output: float
    cache_read: float
    cache_write: float = 1.0  # Anthropic's 5-minute write; OpenAI has no write surcharge
    min_cacheable: int = 1024


PRICES = {
    "claude-sonnet-4-5": Price(3.00, 15.00, 0.10, 1.25, 1024),
    "claude-opus-4-1": Price(15.00, 75.00, 0.10, 1.25, 1024),
    "claude-haiku-4-5": Price(1.00, 5.00, 0.10, 1.25, 2048),
    "gpt-4o": Price(2.50, 10.00, 0.50),
    "gpt-4.1": Price(2.00, 8.00, 0.25),
    "gpt-5": Price(1.25, 10.00, 0.10),
}


@dataclass(frozen=True)
class Bill:
    """What one request cost: input split as the provider bills it."""

    path: str
    model: str
    uncached: int
    cache_read: int
    cache_write: int
    output: int
    usd: float

    @property
    def input_total(self) -> int:
        return self.uncached + self.cache_read + self.cache_write


def _strip_cache_control(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_cache_control(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_strip_cache_control(v) for v in value]
    return value


def _canonical(value: Any) -> str:
    return json.dumps(_strip_cache_control(value), separators=(",", ":"), ensure_ascii=False)


def anthropic_blocks(doc: dict) -> list[tuple[str, bool]]:
    """(canonical text, is a breakpoint) per block, in cache prefix order."""
    out: list[tuple[str, bool]] = []
    for tool in doc.get("tools") or []:
        out.append((_canonical(tool), isinstance(tool, dict) and "cache_control" in tool))
    system = doc.get("system")
    if isinstance(system, str):
        out.append((_canonical({"system": system}), False))
    elif isinstance(system, list):
        for block in system:
            out.append((_canonical(block), isinstance(block, dict) and "cache_control" in block))
    for message in doc.get("messages") or []:
        role = message.get("role", "")
        content = message.get("content")
        if isinstance(content, str):
            out.append((_canonical({"role": role, "text": content}), False))
            continue
        for block in content or []:
            out.append((_canonical({"role": role, **block}) if isinstance(block, dict)
                         else _canonical(block), isinstance(block, dict) and "cache_control" in block))
    return out


def openai_prompt(doc: dict, responses: bool) -> str:
    """The prompt in the order the model reads it (tools before the conversation)."""
    parts: list[str] = []
    if responses and doc.get("instructions"):
        parts.append(_canonical({"instructions": doc["instructions"]}))
    parts += [_canonical(t) for t in doc.get("tools") or []]
    items = doc.get("input") if responses else doc.get("messages")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    parts += [_canonical(item) for item in items or []]
    return "\n".join(parts)


@dataclass
class CachingProvider:
    """Prompt caches per model; `reply` answers a recorded request and appends its Bill."""

    clock: Callable[[], float]
    bills: list[Bill] = field(default_factory=list)
    _anthropic: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> key -> expiry
    _openai: dict[str, dict[bytes, float]] = field(default_factory=dict)

    def reply(self, rec: Recorded) -> Reply | None:
        path = rec.target.split("?", 1)[0]
        try:
            doc = json.loads(rec.body)
        except ValueError:
            return None
        model = doc.get("model", "")
        price = PRICES.get(model)
        if price is None or not isinstance(doc, dict):
            return None  # fake_provider's default answer
        stream = doc.get("stream") is True
        if path.endswith("/v1/messages"):
            uncached, read, write = self.anthropic_usage(model, doc, price)
            self._bill(path, model, price, uncached, read, write)
            if stream:
                return Reply(events=anthropic_events(model, ("ok",), uncached, OUTPUT_TOKENS, read, write))
            return Reply(body=json.dumps(anthropic_message(model, "ok", uncached, OUTPUT_TOKENS,
                                                           read, write)).encode())
        responses = path.endswith("/v1/responses")
        if not (responses or path.endswith("/v1/chat/completions")):
            return None
        total, cached = self.openai_usage(model, doc, responses, price)
        self._bill(path, model, price, total - cached, cached, 0)
        if responses:
            if stream:
                return Reply(events=openai_response_events(model, ("ok",), total, OUTPUT_TOKENS, cached))
            return Reply(body=json.dumps(openai_response(model, "ok", total, OUTPUT_TOKENS, cached)).encode())
        if stream:
            return Reply(events=openai_chat_events(model, ("ok",), total, OUTPUT_TOKENS, cached))
        return Reply(body=json.dumps(openai_chat(model, "ok", total, OUTPUT_TOKENS, cached)).encode())

    def _bill(self, path: str, model: str, price: Price, uncached: int, read: int,
              write: int) -> Bill:
        usd = (uncached + read * price.cache_read + write * price.cache_write) * price.input / 1e6 \
            + OUTPUT_TOKENS * price.output / 1e6
        bill = Bill(path, model, uncached, read, write, OUTPUT_TOKENS, usd)
        self.bills.append(bill)
        return bill

    # --- Anthropic: explicit breakpoints ---

    def anthropic_usage(self, model: str, doc: dict, price: Price) -> tuple[int, int, int]:
        """(uncached input, cache read, cache write) tokens of one request."""
        blocks = anthropic_blocks(doc)
        keys, totals = [], []
        h = hashlib.sha256(model.encode())
        running = 0
        for text, _ in blocks:
            h.update(text.encode("utf-8", "surrogatepass") + b"\x00")
            keys.append(h.hexdigest())
            running += count_text(text)
            totals.append(running)
        total = running
        breakpoints = [i for i, (_, bp) in enumerate(blocks) if bp]
        if not breakpoints:
            return total, 0, 0
        if len(breakpoints) > ANTHROPIC_MAX_BREAKPOINTS:
            raise ValueError(f"{len(breakpoints)} cache_control blocks (at most 4)")
        cache = self._anthropic.setdefault(model, {})
        now = self.clock()
        read_end = -1  # index of the last block of the longest cached prefix
        for bp in breakpoints:
            for j in range(bp, max(-1, bp - ANTHROPIC_LOOKBACK - 1), -1):
                if cache.get(keys[j], 0.0) > now:
                    read_end = max(read_end, j)
                    break
        read = totals[read_end] if read_end >= 0 else 0
        if read_end >= 0:
            cache[keys[read_end]] = now + TTL_S  # a hit refreshes the entry
        write = 0
        last = breakpoints[-1]
        if last > read_end and totals[last] >= price.min_cacheable:
            write = totals[last] - read
            for bp in breakpoints:
                if totals[bp] >= price.min_cacheable:
                    cache[keys[bp]] = now + TTL_S
        return total - read - write, read, write

    # --- OpenAI: automatic prefix caching ---

    def openai_usage(self, model: str, doc: dict, responses: bool, price: Price) -> tuple[int, int]:
        """(prompt tokens, cached tokens) of one request."""
        ids = get_encoding("o200k_base").encode_ordinary(openai_prompt(doc, responses))
        total = len(ids)
        if total < OPENAI_MIN:
            return total, 0
        cache = self._openai.setdefault(model, {})
        now = self.clock()
        raw = array("I", ids).tobytes()
        h = hashlib.sha256(model.encode())
        done = 0
        cached = 0
        seen: list[bytes] = []
        for end in range(OPENAI_MIN, total + 1, OPENAI_STEP):
            h.update(raw[done * 4:end * 4])
            done = end
            key = h.digest()
            seen.append(key)
            if cache.get(key, 0.0) > now:
                cached = end
        for key in seen:  # this prompt's prefixes are cached from now on (or refreshed)
            cache[key] = now + TTL_S
        return total, cached
