"""wire.request: dispatch by endpoint, refusal of other shapes, and a mutation fuzz."""

from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest

from headroom_core.jsonfmt import loads
from headroom_core.tokens import count_request
from headroom_core.wire import Endpoint, ProviderRequest, parse_request
from headroom_core.wire.anthropic import AnthropicRequest
from headroom_core.wire.openai_chat import OpenAIChatRequest
from headroom_core.wire.openai_responses import OpenAIResponsesRequest

DATA = Path(__file__).parent / "data"
ANTHROPIC_BODY = (DATA / "anthropic_request.json").read_bytes()
CHAT_BODY = (DATA / "openai_chat_request.json").read_bytes()
RESPONSES_BODY = (DATA / "openai_responses_request.json").read_bytes()


@pytest.mark.parametrize("endpoint,provider", [
    (Endpoint.ANTHROPIC_MESSAGES, "anthropic"), (Endpoint.ANTHROPIC_COUNT_TOKENS, "anthropic"),
    (Endpoint.ANTHROPIC_OTHER, "anthropic"), (Endpoint.OPENAI_CHAT, "openai"),
    (Endpoint.OPENAI_RESPONSES, "openai"), (Endpoint.OPENAI_OTHER, "openai"),
])
def test_endpoint_provider(endpoint: Endpoint, provider: str) -> None:
    assert endpoint.provider == provider
    assert Endpoint(endpoint.value) is endpoint and endpoint == endpoint.value


@pytest.mark.parametrize("doc,endpoint,kind", [
    ({"messages": []}, Endpoint.ANTHROPIC_MESSAGES, AnthropicRequest),
    ({"messages": []}, Endpoint.ANTHROPIC_COUNT_TOKENS, AnthropicRequest),
    ({"messages": []}, Endpoint.OPENAI_CHAT, OpenAIChatRequest),
    ({"input": []}, Endpoint.OPENAI_RESPONSES, OpenAIResponsesRequest),
    ({"input": "hi"}, Endpoint.OPENAI_RESPONSES, OpenAIResponsesRequest),
    ({"prompt": {"id": "pmpt_1"}}, Endpoint.OPENAI_RESPONSES, OpenAIResponsesRequest),
    ({"model": "text-embedding-3-small", "input": "x"}, Endpoint.OPENAI_OTHER, ProviderRequest),
    ({}, Endpoint.ANTHROPIC_OTHER, ProviderRequest),
])
def test_dispatch(doc: dict, endpoint: Endpoint, kind: type) -> None:
    request = parse_request(doc, endpoint)
    assert type(request) is kind and request.doc is doc and request.endpoint is endpoint


@pytest.mark.parametrize("doc,endpoint", [
    (None, Endpoint.ANTHROPIC_MESSAGES), ([], Endpoint.OPENAI_CHAT), ("text", Endpoint.OPENAI_RESPONSES),
    (3, Endpoint.OPENAI_OTHER), ({}, Endpoint.ANTHROPIC_MESSAGES), ({"messages": {}}, Endpoint.OPENAI_CHAT),
    ({"input": {"role": "user"}}, Endpoint.OPENAI_RESPONSES), ({"messages": []}, "anthropic.unknown"),
])
def test_not_that_format(doc: object, endpoint: Endpoint) -> None:
    assert parse_request(doc, endpoint) is None


def test_endpoint_value_is_accepted() -> None:
    request = parse_request({"messages": []}, "anthropic.messages")  # type: ignore[arg-type]
    assert type(request) is AnthropicRequest and request.endpoint is Endpoint.ANTHROPIC_MESSAGES


def test_base_view_of_other_endpoints() -> None:
    request = parse_request({"model": "m", "stream": True, "messages": [{"role": "tool", "content": "x"}]},
                            Endpoint.OPENAI_OTHER)
    assert (request.model, request.stream, request.tool_outputs(), request.user_texts()) == ("m", True, [], [])
    with pytest.raises(ValueError):
        request.replace_user_text(("messages", 0), "x")


ODD_VALUES = [None, 0, -1, 1.5, True, "", "text", [], [None], {}, {"type": "text"}, {"type": 7, "text": None}]


def _mutate(node: object, rng: random.Random) -> None:
    """Replace, delete or retype one random value somewhere inside `node`."""
    path = []
    while isinstance(node, (dict, list)) and node and rng.random() < 0.8:
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        path.append((node, key))
        node = node[key]
    if not path:
        return
    parent, key = path[-1]
    if rng.random() < 0.3:
        del parent[key]
    else:
        parent[key] = copy.deepcopy(rng.choice(ODD_VALUES))


@pytest.mark.parametrize("body,endpoint", [
    (ANTHROPIC_BODY, Endpoint.ANTHROPIC_MESSAGES), (CHAT_BODY, Endpoint.OPENAI_CHAT),
    (RESPONSES_BODY, Endpoint.OPENAI_RESPONSES),
])
def test_mutation_fuzz_never_crashes(body: bytes, endpoint: Endpoint) -> None:
    rng = random.Random(endpoint.value)
    original = loads(body)
    for _ in range(400):
        doc = copy.deepcopy(original)
        for _ in range(rng.randint(1, 4)):
            _mutate(doc, rng)
        assert count_request(doc, endpoint) >= 0  # token counting walks the same odd shapes
        request = parse_request(doc, endpoint)
        if request is None:
            continue
        _ = (request.model, request.stream, request.max_tokens, request.messages, request.tools)
        request.system_text()
        request.tool_names()
        for location, _text in request.user_texts():
            request.replace_user_text(location, "u")
        outputs = request.tool_outputs()
        for out in outputs:
            request.replace_tool_output(out, "replaced")
        assert [o.text for o in request.tool_outputs()] == ["replaced"] * len(outputs)
