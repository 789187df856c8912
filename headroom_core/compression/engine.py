"""The request engine: compress every eligible tool output (and oversized pasted user text) of
one provider request in place, keeping every original in the CCR store.

Per output: policy → memo → detect and compress → validate → store the original → replace.
A rendering is a pure function of the output's text, its tool call and the user text before
it (DESIGN rule 2), so a re-sent history renders byte-identically on every turn and after a
restart; the in-process memo only makes that cheap. Any failure leaves that output as it was.

Counting a 100k-token original exactly costs more than compressing it (~25 ms against ~10),
so the size thresholds are decided on a deterministic estimate (counting.TextSize), counted
exactly only when a threshold is too close to call. The exact counts of originals seen for
the first time are then either taken before returning (the default) or left to the caller
(`compress_request(..., exact=False)`: the report's `pending`, counted by `settled()`, which
the proxy runs after the request has been forwarded).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import tokens
from ..jsonfmt import decode_text
from ..ccr import CCRError, CCRStore, marker_hash
from ..tokens import text_digest
from ..wire.common import ProviderRequest, ToolOutput
from .base import CompressContext
from .counting import COUNTS, TextSize, count_exact
from .detect import detect_kind
from .dispatch import compress_text
from .markers import find_markers, has_marker
from .policy import tool_verdict
from .results import (  # noqa: F401  (re-exported: callers import them from here)
    MEMO, CompressionConfig, CompressionReport, HintProvider, OutputResult, PendingCount, RenderHints,
    TransformRecord)


def _args_text(tool_args: str) -> str:
    """String values of the call's arguments (what the call was about), in order."""
    if not tool_args:
        return ""
    try:
        value = json.loads(tool_args)
    except ValueError:
        return tool_args
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, dict):
            for x in v.values():
                walk(x)

    walk(value)
    return " ".join(out)


def compress_output(text: str, *, tenant: str, ccr: CCRStore, config: CompressionConfig,
                    tool_name: str | None = None, tool_args: str = "", query_context: str = "",
                    model: str | None = None, hints: HintProvider | None = None) -> OutputResult:
    """Decide and render one output; the original is stored in CCR before a rendering is returned.

    `hints` (TOIN) is asked only for a tool's output large enough to compress; what it answers
    is part of the rendering's memo key."""
    return _output(text, tenant, ccr, config, tool_name, tool_args, query_context, model, hints)[0]


def _output(text: str, tenant: str, ccr: CCRStore, config: CompressionConfig, tool_name: str | None,
            tool_args: str, query_context: str, model: str | None,
            hints: HintProvider | None) -> tuple[OutputResult, str, bool]:
    """compress_output's result, its memo key, and whether it was decided now (not remembered)."""
    model = config.model or model
    digest = text_digest(text)  # ccr.content_hash's value
    query = query_context + "\n" + _args_text(tool_args)
    shaped: tuple[tuple[str, ...], float] = ((), 0.0)
    if hints is not None and tool_name and len(text) * 4 >= config.min_tokens:
        h = hints(tool_name, text, digest)
        shaped = (tuple(h.fields), float(h.retrieval_rate))
    key = hashlib.sha256("\x00".join((digest, tool_name or "", tool_args, query, config.rendering_key(),
                                      model or "", repr(shaped) if shaped != ((), 0.0) else "")
                                     ).encode("utf-8", "surrogatepass")).hexdigest()
    result = MEMO.get(key)
    fresh = result is None
    if result is None:
        result = _decide(text, digest, query, tool_name, config, model, shaped)
        MEMO.put(key, result)
    if result.text is not None:
        ccr.ensure(tenant, text, kind=result.kind, tool_name=tool_name, full_hash=digest)
    return result.with_exact_before(), key, fresh


def _decide(text: str, digest: str, query: str, tool_name: str | None, config: CompressionConfig,
            model: str | None, shaped: tuple[tuple[str, ...], float] = ((), 0.0)) -> OutputResult:
    if len(text) * 4 < config.min_tokens:  # a token is at least one UTF-8 byte
        return OutputResult(None, "", 0, 0, digest, reason="below min_tokens", model=model)
    size = TextSize(text, digest, model)
    if not size.at_least(config.min_tokens):
        return _left(size, digest, "", "below min_tokens")
    if has_marker(text):
        return _left(size, digest, "", "already carries a headroom marker")
    kind = detect_kind(text)
    ctx = CompressContext(hash=marker_hash(digest), query=query, tool_name=tool_name, harder=config.harder,
                          hint_fields=shaped[0], retrieval_rate=shaped[1])
    rendering = compress_text(text, ctx, kind)
    if rendering is None or rendering.text == text:
        return _left(size, digest, str(kind), "nothing to omit")
    after = count_exact(rendering.text, model)
    COUNTS.put(text_digest(rendering.text), model, after)  # the request's count finds it there
    # The smallest original this rendering is worth it for: after <= before * (1 - min_savings)
    # and after < before. Only an estimate too close to it to call is counted exactly.
    least = max(after / (1.0 - config.min_savings), after + 1.0) if config.min_savings < 1.0 else float("inf")
    worth = size.at_least(least)
    before = size.value
    if size.exact:  # the rule as written, on the exact count
        worth = not (after >= before or after > before * (1.0 - config.min_savings))
    if not worth:
        return _left(size, digest, rendering.kind, "saving below min_savings")
    if rendering.kind == "json":
        decode_text(rendering.text)  # JSON in, JSON out; a failure here is caught per output
    if rendering.omitted.count and ctx.hash not in find_markers(rendering.text):
        raise AssertionError("a rendering omitted content without a marker naming its hash")
    return OutputResult(rendering.text, rendering.kind, before, after, digest,
                        rendering.omitted.count, rendering.omitted.unit, before_exact=size.exact, model=model)


def _left(size: TextSize, digest: str, kind: str, reason: str) -> OutputResult:
    """The original stays: both counts are its size (an estimate unless exact was needed)."""
    return OutputResult(None, kind, size.value, size.value, digest, reason=reason,
                        before_exact=size.exact, model=size.model)


@dataclass
class _Run:
    transforms: list[TransformRecord] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    pending: list[PendingCount] = field(default_factory=list)
    # replacements decided in this request (not remembered): (transform index, undo, memo key, result)
    fresh: list[tuple[int, Callable[[], None], str, OutputResult]] = field(default_factory=list)

    def add(self, record: TransformRecord, result: OutputResult | None, original: str) -> None:
        """`result`: where the record's tokens_before came from (None: counted exactly here)."""
        if result is not None and not result.before_exact:
            self.pending.append(PendingCount(len(self.transforms), result.full_hash, original, result.model))
        self.transforms.append(record)

    def leave_fresh_whole(self) -> None:
        """Undo this request's new replacements and remember those outputs as left whole."""
        dropped = set()
        for index, undo, key, result in self.fresh:
            undo()
            MEMO.put(key, dataclasses.replace(result, text=None, tokens_after=result.tokens_before,
                                              omitted=0, reason=LATE_REASON))
            dropped.add(index)
        self.fresh.clear()
        renumber = {old: new for new, old in enumerate(i for i in range(len(self.transforms)) if i not in dropped)}
        self.transforms = [t for i, t in enumerate(self.transforms) if i not in dropped]
        self.pending = [dataclasses.replace(p, index=renumber[p.index]) for p in self.pending if p.index in renumber]


# A request whose compression ends this close (a share of the time budget) to its deadline
# leaves the outputs it saw for the first time whole, and the memo remembers them so: the
# pipeline may already have forwarded the original (its budget started earlier), and a re-sent
# history must not switch between an output's original and its rendering (prompt cache).
# Not for the process's first request, which loads the tokenizer and the compressors: the
# pipeline gives that one a warm-up allowance on top of its budget (pipeline.py).
LATE_SHARE = 0.25
LATE_REASON = "compression ended too close to the time budget; left whole (and remembered so)"
_warm = threading.Event()


def compress_request(req: ProviderRequest, *, tenant: str, ccr: CCRStore, config: CompressionConfig,
                     deadline: float | None = None, tokens_before: int | None = None,
                     hints: HintProvider | None = None, exact: bool = True) -> CompressionReport:
    """Compress `req.doc` in place. `deadline` is a `time.monotonic()` instant; past it the
    remaining outputs are left as they are (timed_out). A caller's deadline is one it stops
    waiting at: a request that ends within LATE_SHARE of the budget before it leaves its
    first-seen outputs whole, and remembers them so (see LATE_SHARE).

    Counts are over the whole request (`tokens.count_request`). The request is counted once,
    after compression; `tokens_before` is that count plus what each replaced text saved
    (exact counts of both texts), unless the caller already counted the original request
    and passes it. The two agree up to a token per replaced text where the request's texts
    are joined. `hints` shapes tool outputs only (see compress_output).

    `exact=False` leaves the exact counts of originals seen for the first time to the caller:
    their transforms (and `tokens_before`) carry the estimate the decision was made on, the
    report's `pending` names them, and `report.settled()` counts them. Renderings are the same
    either way; only when the counting happens differs.
    """
    # The late rule is for a caller's deadline (the proxy's, which stops waiting there); the
    # engine's own bound from budget_ms only stops it starting more outputs.
    late_at = deadline - LATE_SHARE * config.budget_ms / 1000.0 \
        if deadline is not None and config.budget_ms and _warm.is_set() else None
    if deadline is None and config.budget_ms:
        deadline = time.monotonic() + config.budget_ms / 1000.0
    endpoint = req.endpoint
    run = _Run()
    timed_out = False
    model = req.model
    for out in req.tool_outputs():
        if deadline is not None and time.monotonic() > deadline:
            timed_out = True
            break
        _one_tool_output(req, out, tenant, ccr, config, model, run, hints)
    if not timed_out:
        for location, text in req.user_texts():
            if deadline is not None and time.monotonic() > deadline:
                timed_out = True
                break
            _one_user_text(req, location, text, tenant, ccr, config, model, run)
    if run.fresh and late_at is not None and time.monotonic() > late_at:
        run.leave_fresh_whole()
        timed_out = True
    _warm.set()
    given = tokens_before is not None
    if not run.transforms:
        if tokens_before is None:
            tokens_before = tokens.count_request(req.doc, endpoint)
        tokens_after = tokens_before
    else:
        tokens_after = tokens.count_request(req.doc, endpoint)
        if tokens_before is None:
            tokens_before = tokens_after + sum(t.tokens_before - t.tokens_after for t in run.transforms)
    report = CompressionReport(tokens_before, tokens_after, tuple(run.transforms), bool(run.transforms),
                               timed_out, tuple(run.errors), tuple(run.skipped), tuple(run.pending), given)
    return report.settled() if exact else report


def _source_of(text: str, tenant: str, ccr: CCRStore, config: CompressionConfig) -> str | None:
    """Compress-first (`harder`) runs on a request whose outputs may already be our renderings:
    such a rendering is rendered again, harder, from its original. None: not one of ours, or
    its original is no longer stored."""
    if not config.harder or "[headroom: " not in text:
        return None
    hashes = find_markers(text)
    if len(hashes) != 1:
        return None
    entry = ccr.get(tenant, hashes[0])
    return entry.text if entry is not None else None


def _one_tool_output(req: ProviderRequest, out: ToolOutput, tenant: str, ccr: CCRStore,
                     config: CompressionConfig, model: str | None, run: _Run,
                     hints: HintProvider | None = None) -> None:
    original = _source_of(out.text, tenant, ccr, config)
    source = out.text if original is None else original
    if len(source) * 4 < config.min_tokens:
        return
    verdict = tool_verdict(out.tool_name, out.tool_args, protect_tools=config.protect_tools,
                           compress_tools=config.compress_tools)
    if not verdict.compress:
        run.skipped.append(f"message {out.message_index}: {verdict.reason}")
        return
    try:
        result, key, fresh = _output(source, tenant, ccr, config, out.tool_name, out.tool_args,
                                     out.query_context, model, hints)
        if result.text is None or result.text == out.text:
            return
        before = result.tokens_before
        if original is not None:  # replacing our own rendering: it must get shorter still
            before = count_exact(out.text, model)
            if result.tokens_after >= before:
                return
        req.replace_tool_output(out, result.text)
    except CCRError as e:  # no stored original, no omission
        run.skipped.append(f"message {out.message_index}: {e}")
        return
    except Exception as e:  # fail open per output: this one goes out as it came
        run.errors.append(f"message {out.message_index} ({out.tool_name}): {type(e).__name__}: {e}")
        return
    if fresh:
        run.fresh.append((len(run.transforms), lambda: req.replace_tool_output(out, out.text), key, result))
    run.add(TransformRecord(result.kind, out.tool_name, before, result.tokens_after,
                            marker_hash(result.full_hash), out.message_index,
                            "tool_result", result.omitted, result.unit),
            result if original is None else None, source)


def _one_user_text(req: ProviderRequest, location: tuple, text: str, tenant: str, ccr: CCRStore,
                   config: CompressionConfig, model: str | None, run: _Run) -> None:
    if len(text) * 4 < config.user_min_tokens:
        return
    index = location[1] if len(location) > 1 and type(location[1]) is int else -1
    user_config = config if config.min_tokens >= config.user_min_tokens else \
        dataclasses.replace(config, min_tokens=config.user_min_tokens)
    try:
        result, key, fresh = _output(text, tenant, ccr, user_config, None, "", "", model, None)
        if result.text is None:
            return
        req.replace_user_text(location, result.text)
    except CCRError as e:
        run.skipped.append(f"message {index}: {e}")
        return
    except Exception as e:
        run.errors.append(f"message {index} (user text): {type(e).__name__}: {e}")
        return
    if fresh:
        run.fresh.append((len(run.transforms), lambda: req.replace_user_text(location, text), key, result))
    run.add(TransformRecord(result.kind, None, result.tokens_before, result.tokens_after,
                            marker_hash(result.full_hash), index, "user_text",
                            result.omitted, result.unit), result, text)
