"""Benchmark LLMLingua-2 compression: per-request latency and kept share at several rates.

    python scripts/bench_llmlingua.py [--model DIR_OR_NAME] [--device auto|cpu|cuda|mps]

Without --model it builds the tiny local model (scripts/build_tiny_llmlingua_model.py) in a
temporary directory: its head is random, so its kept share shows that the rate is honoured and
its latency shows the plumbing's cost, not a real model's. Pass a real LLMLingua-2 model
directory (or hub name, with a network) to measure that. Writes bench-results/llmlingua.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from headroom_core.ml.llmlingua import LLMLinguaService  # noqa: E402
from headroom_core.ml.prose_pass import forced_strings  # noqa: E402
from headroom_core.tokens import count_text  # noqa: E402

RATES = (0.2, 0.3, 0.5)
SIZES = (1000, 4000)  # target o200k tokens per request
SENTENCES = (
    "The deployment of the payment service stalled after the database migration timed out.",
    "Engineers rolled back to the previous release and opened an incident for the on-call team.",
    "Customers in two regions saw failed checkouts for roughly forty minutes before recovery.",
    "The root cause was a missing index on the orders table, which made the backfill scan every row.",
    "Monitoring fired late because the alert threshold had been raised during last quarter's load test.",
    "We will add the index in a separate change and rehearse the migration on a production-sized copy.",
    "The runbook now says to pause traffic shifting whenever a schema change takes longer than expected.",
    "Support published a status update and answered the questions that arrived through the help desk.",
    "A follow-up review found that retries amplified the load on the primary database during the outage.",
    "Clients should back off exponentially and respect the retry-after header that the gateway returns.",
    "The team agreed to track migration duration as a release metric and to review it every week.",
    "Finance asked for an estimate of lost revenue, which the analytics group will provide on Friday.",
)


def make_prose(tokens: int, seed: int) -> str:
    """Deterministic English paragraphs of about `tokens` o200k tokens."""
    rng = random.Random(seed)
    paragraphs: list[str] = []
    while count_text("\n\n".join(paragraphs)) < tokens:
        paragraphs.append(" ".join(rng.choice(SENTENCES) for _ in range(rng.randint(3, 6))))
    return "\n\n".join(paragraphs)


async def loop_gap_during(service: LLMLinguaService, text: str) -> tuple[float, float]:
    """(compression seconds, longest event-loop stall seen by a 10 ms ticker meanwhile)."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    await service.compress(text, deadline_s=600)
    elapsed = time.monotonic() - started
    done.set()
    await task
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    return elapsed, max(gaps) if gaps else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory or hub name (default: build the tiny one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per cell (after a warm-up)")
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "llmlingua.md"))
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    model = args.model
    if model is None:
        sys.path.insert(0, str(ROOT / "scripts"))
        from build_tiny_llmlingua_model import build

        model = str(build(tempfile.mkdtemp(prefix="headroom-llmlingua-")))
    service = LLMLinguaService(model, args.device, 0.3, progress=lambda m: print(m, flush=True))
    service.start_loading()
    service.wait_loaded()
    if not service.ready:
        print(f"model did not load: {service.load_error}", file=sys.stderr)
        return 1

    rows = []
    for size in SIZES:
        text = make_prose(size, seed=size)
        force = forced_strings(text)
        before = count_text(text)
        for rate in RATES:
            service.compress_blocking(text, rate=rate, force_tokens=force)  # warm-up
            times, shares = [], []
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                out = service.compress_blocking(text, rate=rate, force_tokens=force)
                times.append(time.perf_counter() - t0)
                shares.append(count_text(out) / before)
            rows.append((before, rate, statistics.median(times) * 1000, max(times) * 1000,
                         statistics.mean(shares)))
            print(f"{before:>6} tok  rate {rate}: p50 {rows[-1][2]:.0f} ms, kept {rows[-1][4]:.3f}",
                  flush=True)
    gap_text = make_prose(SIZES[-1], seed=99)
    elapsed, gap = asyncio.run(loop_gap_during(service, gap_text))
    import torch

    worker_threads = service._executor.submit(torch.get_num_threads).result()
    service.close()

    lines = [
        "# LLMLingua-2 benchmark",
        "",
        f"Model: `{Path(model).name}` on **{service.device}** "
        f"({'tiny local model, random head: plumbing cost, not a real model' if args.model is None else 'as given'}); "
        f"loaded in {service.load_seconds:.1f} s. Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} with {worker_threads} intra-op threads. "
        f"Python {platform.python_version()}.",
        "",
        "Kept share = o200k tokens after / before, whole text (forced identifiers, numbers and line "
        f"structure included). Latency: median and worst of {args.repeat} runs after a warm-up, "
        "on the worker thread.",
        "",
        "| tokens | rate | p50 ms | max ms | kept share |",
        "|---:|---:|---:|---:|---:|",
        *(f"| {b:,} | {r} | {p50:.0f} | {mx:.0f} | {s:.3f} |" for b, r, p50, mx, s in rows),
        "",
        f"Event loop during one {count_text(gap_text):,}-token compression through `compress()` "
        f"({elapsed * 1000:.0f} ms): longest stall of a 10 ms ticker {gap * 1000:.1f} ms.",
        "",
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
