"""`make bench-billing`: what a multi-turn agent session is billed, through headroom vs direct.

A 20-turn coding-agent session (scripts/agent_session.py: logs, file reads, code search, issue
JSON, test runs, database rows, diffs) is replayed turn by turn, the client resending its whole
history each turn, against a fake provider that caches prompts and bills as the providers
document (scripts/caching_provider.py). Each row is billed three ways, each with empty caches:
direct to the provider; through one `headroom proxy`; through `headroom proxy` SIGKILLed after
turn 10 and restarted on the same data directory. Anthropic requests carry `cache_control` on
the system prompt and on the last block of the last user message, as Claude Code does.

Definitions. Billed cost = uncached input x input price + cache reads x read multiplier + cache
writes x write multiplier + output x output price, summed over the turns (USD, list prices in
caching_provider.PRICES). Ratio = proxied cost / direct cost (target <= 0.7). Tokens are the
provider's (o200k_base over the prompt as it received it). Writes bench-results/billing.md and
prints it.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT / "tests"), str(ROOT / "tests" / "e2e")]

import httpx  # noqa: E402

from agent_session import PATHS, turn_bodies  # noqa: E402
from caching_provider import PRICES, Bill, CachingProvider  # noqa: E402
from fake_provider import FakeProvider  # noqa: E402
from proxy_runner import ProxyProcess, headroom_proxy  # noqa: E402

TURNS = int(os.environ.get("BENCH_TURNS", "20"))
TURN_S = 30.0  # virtual seconds between two turns (within the 5-minute cache lifetime)
TARGET = 0.7
KEYS = {"anthropic": {"x-api-key": "sk-bench-billing", "anthropic-version": "2023-06-01"},
        "chat": {"authorization": "Bearer sk-bench-billing"},
        "responses": {"authorization": "Bearer sk-bench-billing"}}
ROWS = (("anthropic", "claude-sonnet-4-5", False), ("anthropic", "claude-sonnet-4-5", True),
        ("chat", "gpt-4o", False), ("responses", "gpt-4o", False), ("chat", "gpt-4.1", False))


@dataclass(frozen=True)
class Run:
    bills: tuple[Bill, ...]

    @property
    def usd(self) -> float:
        return sum(b.usd for b in self.bills)

    def tokens(self, name: str) -> int:
        return sum(getattr(b, name) for b in self.bills)


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def replay(provider: FakeProvider, dialect: str, bodies: list[bytes],
           target: "ProxyProcess | str",
           restart: "Callable[[ProxyProcess], ProxyProcess] | None" = None) -> Run:
    """Send every turn to `target` (a proxy, or the provider's URL); `restart(proxy)` after
    half the turns returns the proxy to use from then on."""
    clock = Clock()
    bills = CachingProvider(clock=clock)
    provider.handler = bills.reply
    try:
        for k, body in enumerate(bodies):
            if restart is not None and k == len(bodies) // 2:
                target = restart(target)
            url = target if isinstance(target, str) else target.url
            with httpx.Client(base_url=url, trust_env=False, timeout=120) as c:
                resp = c.post(PATHS[dialect], content=body,
                              headers={"content-type": "application/json", **KEYS[dialect]})
            if resp.status_code != 200:
                raise RuntimeError(f"turn {k + 1}: {resp.status_code} {resp.text[:300]}")
            clock.t += TURN_S
    finally:
        provider.handler = None
    assert len(bills.bills) == len(bodies), "every turn reaches the provider exactly once"
    return Run(tuple(bills.bills))


def start_proxy(provider: FakeProvider, tmp: Path, data: Path) -> ProxyProcess:
    tmp.mkdir(parents=True, exist_ok=True)
    return headroom_proxy(provider.url, tmp / "proxy.log", data, ["--quiet"])


def kill_and_restart_factory(provider: FakeProvider, tmp: Path, data: Path):
    """A `restart` for replay(): SIGKILL the proxy, start a new one on `data`; the proxies it
    started are appended to the returned list (stop them)."""
    started: list[ProxyProcess] = []

    def kill_and_restart(old: ProxyProcess) -> ProxyProcess:
        os.kill(old.proc.pid, signal.SIGKILL)
        old.proc.wait(timeout=15)
        old.stop()
        new = start_proxy(provider, tmp, data)
        started.append(new)
        return new

    return kill_and_restart, started


def bench_row(provider: FakeProvider, tmp: Path, dialect: str, model: str, stream: bool) -> dict:
    bodies = turn_bodies(dialect, TURNS, stream=stream, cache_control=dialect == "anthropic",
                         model=model)
    tag = f"{dialect}-{model}-{'stream' if stream else 'buffered'}"
    direct = replay(provider, dialect, bodies, provider.url)
    proxy = start_proxy(provider, tmp / tag / "one", tmp / tag / "data-one")
    try:
        through = replay(provider, dialect, bodies, proxy)
    finally:
        proxy.stop()

    kill_and_restart, started = kill_and_restart_factory(provider, tmp / tag / "restarted",
                                                         tmp / tag / "data-two")
    first = start_proxy(provider, tmp / tag / "first", tmp / tag / "data-two")
    try:
        restarted = replay(provider, dialect, bodies, first, kill_and_restart)
    finally:
        for p in [first, *started]:
            p.stop()
    assert len(started) == 1, "the proxy was killed and restarted once"
    return {"dialect": dialect, "model": model, "stream": stream, "direct": direct,
            "proxy": through, "restart": restarted, "client_bytes": sum(map(len, bodies))}


def fmt_tokens(run: Run) -> str:
    return (f"{run.tokens('uncached'):,} / {run.tokens('cache_read'):,} / "
            f"{run.tokens('cache_write'):,}")


def report(rows: list[dict]) -> str:
    lines = ["# Billing benchmark: a replayed agent session, direct vs through headroom", "",
             f"Python {platform.python_version()}, {os.cpu_count()} CPUs. {TURNS} turns; the "
             "client resends its whole history each turn; each configuration starts with empty "
             "provider caches. Provider simulation: scripts/caching_provider.py (Anthropic "
             "`cache_control` breakpoints with 20-block lookback, reads 0.1x, 5-minute writes "
             "1.25x; OpenAI automatic prefix caching from 1,024 tokens in 128-token steps, gpt-4o "
             "cached input 0.5x, gpt-4.1 0.25x). Anthropic turns carry `cache_control` on the "
             "system prompt and the last user block, as Claude Code sends them.", "",
             "| session | direct | through headroom | ratio | killed + restarted at turn "
             f"{TURNS // 2 + 1} | ratio | target |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        d, p, k = r["direct"].usd, r["proxy"].usd, r["restart"].usd
        ok = "✓" if p / d <= TARGET and k / d <= TARGET else "✗"
        name = f"{r['dialect']} {r['model']}{' (stream)' if r['stream'] else ''}"
        lines.append(f"| {name} | ${d:.4f} | ${p:.4f} | {p / d:.2f}x | ${k:.4f} | {k / d:.2f}x | "
                     f"≤{TARGET}x {ok} |")
    lines += ["", "Input tokens the provider billed, uncached / cache read / cache write "
              "(OpenAI has no write charge: its first sight of a prefix is uncached input):", "",
              "| session | direct | through headroom | killed + restarted |", "|---|---:|---:|---:|"]
    for r in rows:
        name = f"{r['dialect']} {r['model']}{' (stream)' if r['stream'] else ''}"
        lines.append(f"| {name} | {fmt_tokens(r['direct'])} | {fmt_tokens(r['proxy'])} | "
                     f"{fmt_tokens(r['restart'])} |")
    lines += ["", "Per-turn cost (USD) of the first row, direct → through headroom:", "",
              "| turn | " + " | ".join(str(i + 1) for i in range(TURNS)) + " |",
              "|---|" + "---:|" * TURNS,
              "| direct | " + " | ".join(f"{b.usd:.4f}" for b in rows[0]["direct"].bills) + " |",
              "| headroom | " + " | ".join(f"{b.usd:.4f}" for b in rows[0]["proxy"].bills) + " |",
              "| restarted | " + " | ".join(f"{b.usd:.4f}" for b in rows[0]["restart"].bills)
              + " |", ""]
    return "\n".join(lines)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="headroom-bench-billing-"))
    for _, model, _ in ROWS:
        assert model in PRICES
    with FakeProvider() as provider:
        rows = [bench_row(provider, tmp, *row) for row in ROWS]
    text = report(rows)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    (out / "billing.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
