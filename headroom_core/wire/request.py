"""Dispatch a parsed request body to the typed view of its wire format."""

from __future__ import annotations

from typing import Any

from .anthropic import AnthropicRequest
from .common import Endpoint, ProviderRequest
from .openai_chat import OpenAIChatRequest
from .openai_responses import OpenAIResponsesRequest

__all__ = ["parse_request", "ProviderRequest"]


def parse_request(doc: Any, endpoint: Endpoint) -> ProviderRequest | None:
    """The view of `doc` for `endpoint`, or None when `doc` is not a body of that format.

    Never raises: odd shapes inside a body of the right format just yield fewer tool outputs.
    Endpoints we do not rewrite (embeddings, models, ...) get the base view (model, stream).
    """
    if not isinstance(doc, dict):
        return None
    try:
        endpoint = Endpoint(endpoint)  # the enum's value ("openai.chat") is accepted too
    except ValueError:
        return None
    if endpoint in (Endpoint.ANTHROPIC_MESSAGES, Endpoint.ANTHROPIC_COUNT_TOKENS):
        return AnthropicRequest(doc, endpoint) if isinstance(doc.get("messages"), list) else None
    if endpoint is Endpoint.OPENAI_CHAT:
        return OpenAIChatRequest(doc, endpoint) if isinstance(doc.get("messages"), list) else None
    if endpoint is Endpoint.OPENAI_RESPONSES:
        raw = doc.get("input")
        if raw is None or type(raw) is str or isinstance(raw, list):  # absent with a prompt id
            return OpenAIResponsesRequest(doc, endpoint)
        return None
    return ProviderRequest(doc, endpoint)
