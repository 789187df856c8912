"""The billing benchmark's parts: the caching fake provider bills as the providers document, and
a short agent session costs less through headroom than direct, the same after a SIGKILL and
restart (scripts/bench_billing.py reports the 20-turn figures)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from agent_session import turn_bodies  # noqa: E402
from bench_billing import Clock, kill_and_restart_factory, replay, start_proxy  # noqa: E402
from caching_provider import PRICES, TTL_S, CachingProvider  # noqa: E402
from fake_provider import Recorded  # noqa: E402

WORDS = " ".join(f"word{i}" for i in range(3000))  # ~8,000 tokens


def rec(path: str, doc: dict) -> Recorded:
    return Recorded("POST", path, (), json.dumps(doc).encode(), 0.0)


def anthropic_doc(turns: int, breakpoint: bool = True) -> dict:
    """A growing conversation: `turns` user questions, the last one carrying the breakpoint."""
    messages: list[dict] = []
    for k in range(turns):
        if k:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": f"a{k}"}]})
        messages.append({"role": "user", "content": [{"type": "text", "text": f"q{k} " + WORDS}]})
    if breakpoint:
        messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}
    return {"model": "claude-sonnet-4-5", "max_tokens": 10, "system": "be brief", "messages": messages}


def usage(reply) -> dict:
    return json.loads(reply.body)["usage"]


def test_anthropic_moving_breakpoint_reads_the_previous_prefix_and_writes_the_rest():
    clock = Clock()
    p = CachingProvider(clock=clock)
    first = usage(p.reply(rec("/v1/messages", anthropic_doc(1))))
    assert first["cache_read_input_tokens"] == 0 and first["cache_creation_input_tokens"] > 6000
    assert first["input_tokens"] == 0  # everything up to the breakpoint was written
    second = usage(p.reply(rec("/v1/messages", anthropic_doc(2))))
    # Turn 1's prefix ends at its last block: found by the lookback from the new breakpoint.
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert abs(second["cache_creation_input_tokens"] - first["cache_creation_input_tokens"]) < 50
    price = PRICES["claude-sonnet-4-5"]
    b = p.bills[1]
    assert b.usd == pytest.approx((b.cache_read * 0.1 + b.cache_write * 1.25) * price.input / 1e6
                                  + b.output * price.output / 1e6)


def test_anthropic_no_breakpoint_small_prefix_and_expiry():
    clock = Clock()
    p = CachingProvider(clock=clock)
    assert usage(p.reply(rec("/v1/messages", anthropic_doc(1, breakpoint=False)))) \
        ["cache_creation_input_tokens"] == 0
    small = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]}
    assert usage(p.reply(rec("/v1/messages", small)))["cache_creation_input_tokens"] == 0  # < 1,024
    p.reply(rec("/v1/messages", anthropic_doc(1)))
    clock.t += TTL_S + 1
    assert usage(p.reply(rec("/v1/messages", anthropic_doc(1))))["cache_read_input_tokens"] == 0


def test_openai_prefix_caching_in_128_token_steps_from_1024():
    p = CachingProvider(clock=Clock())
    doc = {"model": "gpt-4o", "messages": [{"role": "user", "content": WORDS}]}
    first = usage(p.reply(rec("/v1/chat/completions", doc)))
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    doc["messages"].append({"role": "user", "content": "and then?"})
    second = usage(p.reply(rec("/v1/chat/completions", doc)))
    cached = second["prompt_tokens_details"]["cached_tokens"]
    assert cached >= 1024 and (cached - 1024) % 128 == 0
    assert first["prompt_tokens"] - 128 < cached <= first["prompt_tokens"]
    doc["messages"][0]["content"] = "changed " + WORDS  # a different first token: no hit
    assert usage(p.reply(rec("/v1/chat/completions", doc)))["prompt_tokens_details"]["cached_tokens"] == 0
    short = {"model": "gpt-4o", "input": "hi", "store": False}
    p.reply(rec("/v1/responses", short))
    assert usage(p.reply(rec("/v1/responses", short)))["input_tokens_details"]["cached_tokens"] == 0


@pytest.mark.e2e
@pytest.mark.parametrize("dialect", ["anthropic", "chat"])
def test_session_costs_less_through_headroom_also_after_a_restart(provider, tmp_path, dialect):
    bodies = turn_bodies(dialect, 6, cache_control=dialect == "anthropic")
    direct = replay(provider, dialect, bodies, provider.url)
    proxy = start_proxy(provider, tmp_path / "one", tmp_path / "data-one")
    try:
        through = replay(provider, dialect, bodies, proxy)
    finally:
        proxy.stop()
    restart, started = kill_and_restart_factory(provider, tmp_path / "two", tmp_path / "data-two")
    first = start_proxy(provider, tmp_path / "first", tmp_path / "data-two")
    try:
        restarted = replay(provider, dialect, bodies, first, restart)
    finally:
        for p in [first, *started]:
            p.stop()
    assert len(started) == 1 and started[0].proc.pid != first.proc.pid
    assert through.usd < 0.7 * direct.usd
    assert through.tokens("cache_read") > 0  # the provider's cache kept hitting
    # Renderings are deterministic: the restarted proxy sends the same bytes, so the same bill.
    assert [b.usd for b in restarted.bills] == [b.usd for b in through.bills]
