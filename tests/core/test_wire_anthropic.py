"""wire.anthropic: tool outputs, replacement in place, user texts, byte fidelity."""

from __future__ import annotations

import copy

from pathlib import Path

import pytest

from headroom_core.jsonfmt import detect_style, dumps, loads
from headroom_core.wire import Endpoint, StaleLocationError, ToolOutput, parse_request
from headroom_core.wire.anthropic import AnthropicRequest

BODY = (Path(__file__).parent / "data" / "anthropic_request.json").read_bytes()


def view() -> AnthropicRequest:
    request = parse_request(loads(BODY), Endpoint.ANTHROPIC_MESSAGES)
    assert isinstance(request, AnthropicRequest)
    return request


def test_basic_properties() -> None:
    r = view()
    assert (r.model, r.stream, r.max_tokens, r.endpoint) == (
        "claude-sonnet-4-5-20250929", True, 32000, Endpoint.ANTHROPIC_MESSAGES)
    assert r.system_text() == "You are Claude Code.\nBe terse."
    assert r.tool_names() == ["Bash", "web_search"]
    assert len(r.messages) == 5 and r.messages is r.doc["messages"]
    assert r.tools is r.doc["tools"]
    assert parse_request({"messages": [], "system": "plain"}, Endpoint.ANTHROPIC_COUNT_TOKENS).system_text() == "plain"


def test_tool_outputs() -> None:
    outs = view().tool_outputs()
    assert outs[0] == ToolOutput(
        location=("messages", 2, 0), message_index=2, tool_name="Bash",
        tool_args='{"command":"grep ERROR app.log","timeout":1.50}', call_id="toolu_01",
        text="ERROR 1\nERROR 2 — échec", is_error=False,
        query_context="Trouve les erreurs dans app.log 🔍")
    second, image_only, orphan = outs[1:]
    assert (second.tool_name, second.call_id, second.text, second.is_error) == (
        "Bash", "toolu_02", "part one\npart two", True)
    # The user's text earlier in the same message is the latest user text before this output;
    # the reminder after the first output did count as user text for later outputs.
    assert second.query_context == "And this one?"
    assert (image_only.tool_name, image_only.text, image_only.location) == ("Read", "", ("messages", 4, 2))
    assert (orphan.tool_name, orphan.tool_args, orphan.text) == (None, "", "")


def test_replace_string_content_and_byte_fidelity() -> None:
    r = view()
    out = r.tool_outputs()[0]
    r.replace_tool_output(out, "2 ERROR lines [headroom: 1a2b]")
    written = dumps(r.doc, detect_style(BODY))
    assert written == BODY.replace(b'"ERROR 1\\nERROR 2 \xe2\x80\x94 \xc3\xa9chec"', b'"2 ERROR lines [headroom: 1a2b]"')


def test_untouched_round_trip_is_identical() -> None:
    r = view()
    r.tool_outputs()
    r.user_texts()
    assert dumps(r.doc, detect_style(BODY)) == BODY


def test_replace_block_list_keeps_images_in_order_and_cache_control() -> None:
    r = view()
    out = r.tool_outputs()[1]
    r.replace_tool_output(out, "summary")
    block = r.doc["messages"][4]["content"][1]
    assert block["content"] == [
        {"type": "text", "text": "summary", "cache_control": {"type": "ephemeral"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]
    assert block["is_error"] is True and block["tool_use_id"] == "toolu_02"
    assert r.tool_outputs()[1].text == "summary"


def test_replace_image_only_and_missing_content() -> None:
    r = view()
    _, _, image_only, orphan = r.tool_outputs()
    r.replace_tool_output(image_only, "note")
    assert r.doc["messages"][4]["content"][2]["content"][0] == {"type": "text", "text": "note"}
    assert r.doc["messages"][4]["content"][2]["content"][1]["type"] == "image"
    r.replace_tool_output(orphan, "filled")
    assert r.doc["messages"][4]["content"][3]["content"] == "filled"


def test_stale_location_raises() -> None:
    r = view()
    out = r.tool_outputs()[0]
    del r.doc["messages"][0]
    with pytest.raises(StaleLocationError):
        r.replace_tool_output(out, "x")
    with pytest.raises(StaleLocationError):
        r.replace_tool_output(ToolOutput(("messages", 99, 0), 99, None, "", None, "", False, ""), "x")
    with pytest.raises(ValueError):
        r.replace_user_text(("messages", 1), "x")


def test_user_texts_and_replacement() -> None:
    r = view()
    texts = r.user_texts()
    assert texts == [
        (("messages", 0), "Trouve les erreurs dans app.log 🔍"),
        (("messages", 2, 1), "<system-reminder>todo list empty</system-reminder>"),
        (("messages", 4, 0), "And this one?"),
    ]
    r.replace_user_text(("messages", 0), "short")
    r.replace_user_text(("messages", 4, 0), "shorter")
    assert r.doc["messages"][0]["content"] == "short"
    assert r.doc["messages"][4]["content"][0] == {"type": "text", "text": "shorter"}
    with pytest.raises(StaleLocationError):
        r.replace_user_text(("messages", 4, 1), "that is a tool_result")


ODD_MESSAGES = [
    None, 3, "text", [], {}, {"role": "user"}, {"role": "user", "content": None},
    {"role": "user", "content": [None, 1, "s", {"type": "tool_result"}, {"type": "tool_result", "tool_use_id": 5,
                                                                      "content": {"weird": 1}}]},
    {"role": "assistant", "content": [{"type": "tool_use"}, {"type": "tool_use", "id": "t", "input": {1j: 2} and None}]},
    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [None, {"type": "text", "text": 5}]}]},
    {"role": "system", "content": "odd"}, {"role": "user", "content": [{"type": "mystery_block", "x": 1}]},
]


def test_odd_shapes_never_crash() -> None:
    doc = {"model": 5, "stream": "yes", "max_tokens": "10", "system": {"x": 1}, "tools": {"a": 1},
           "messages": ODD_MESSAGES}
    r = parse_request(copy.deepcopy(doc), Endpoint.ANTHROPIC_MESSAGES)
    assert r is not None
    assert (r.model, r.stream, r.max_tokens, r.system_text(), r.tool_names(), r.tools) == (None, False, None, "", [], [])
    outs = r.tool_outputs()
    assert [(o.call_id, o.text) for o in outs] == [(None, ""), (None, ""), ("t", "")]
    for out in outs:
        r.replace_tool_output(out, "ok")
    assert [o.text for o in r.tool_outputs()] == ["ok", "ok", "ok"]
    assert r.user_texts() == []
