"""Compress-first: the callback that re-renders one unit's tool results with harder settings.

Context fitting calls it on older units before it drops anything (`--no-compress-first` turns it
off). A result the engine already rendered carries a marker naming its original in the CCR
store; the harder rendering starts from that original, never from a rendering (a rendering with
a marker is not compressed again). The same exact-output protection as the engine applies, and a
harder rendering is used only when it is smaller than what the unit carries now. The result is a
function of the unit's own messages, so the same unit always renders the same.
"""

from __future__ import annotations

import dataclasses

from .. import tokens
from ..ccr import CCRError, CCRStore
from ..compression.engine import CompressionConfig, HintProvider, compress_output
from ..compression.markers import find_markers
from ..compression.policy import tool_verdict
from ..wire.common import Endpoint
from ..wire.request import parse_request
from .manager import CompressHarder
from .render import CONTEXT_KIND


def engine_compress_harder(endpoint: Endpoint, *, tenant: str, ccr: CCRStore,
                           config: CompressionConfig, model: str | None,
                           hints: HintProvider | None = None) -> CompressHarder:
    """A CompressHarder over the compression engine, for one request (`hints`: the same TOIN
    hint provider the engine's first pass had, so both renderings see the same hints)."""
    harder = dataclasses.replace(config, harder=True, budget_ms=None)
    key = "input" if endpoint is Endpoint.OPENAI_RESPONSES else "messages"

    def compress_unit(messages: list) -> list:
        body = {"model": model, key: messages} if model else {key: messages}
        req = parse_request(body, endpoint)
        if req is None:
            return messages
        for out in req.tool_outputs():
            verdict = tool_verdict(out.tool_name, out.tool_args, protect_tools=config.protect_tools,
                                   compress_tools=config.compress_tools)
            if not verdict.compress:
                continue
            original = _original_of(out.text, tenant, ccr)
            try:
                result = compress_output(original, tenant=tenant, ccr=ccr, config=harder,
                                         tool_name=out.tool_name, tool_args=out.tool_args,
                                         query_context=out.query_context, model=model, hints=hints)
            except CCRError:
                continue  # no stored original, no omission
            if result.text is None or result.text == out.text:
                continue
            if tokens.count_text(result.text, model) < tokens.count_text(out.text, model):
                req.replace_tool_output(out, result.text)
        return body[key]

    return compress_unit


def _original_of(text: str, tenant: str, ccr: CCRStore) -> str:
    """The original behind an engine rendering (all its markers name one hash), else the text."""
    hashes = find_markers(text)
    if len(hashes) != 1:
        return text
    entry = ccr.get(tenant, hashes[0])
    if entry is None or entry.kind == CONTEXT_KIND:
        return text
    return entry.text
