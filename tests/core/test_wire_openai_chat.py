"""wire.openai_chat: tool messages paired with tool_calls, replacement, user texts, fidelity."""

from __future__ import annotations

from pathlib import Path

import pytest

from headroom_core.jsonfmt import detect_style, dumps, loads
from headroom_core.wire import Endpoint, StaleLocationError, parse_request
from headroom_core.wire.openai_chat import OpenAIChatRequest

# Python's default json.dumps style, as older httpx wrote it: ", " / ": " and \u escapes.
BODY = (Path(__file__).parent / "data" / "openai_chat_request.json").read_bytes()


def view() -> OpenAIChatRequest:
    request = parse_request(loads(BODY), Endpoint.OPENAI_CHAT)
    assert isinstance(request, OpenAIChatRequest)
    return request


def test_basic_properties() -> None:
    r = view()
    assert (r.model, r.stream, r.max_tokens) == ("gpt-4o-2024-08-06", True, 4096)
    assert parse_request({"messages": [], "max_tokens": 7}, Endpoint.OPENAI_CHAT).max_tokens == 7
    assert r.system_text() == "You are a coding agent.\nUse tools."
    assert r.tool_names() == ["ls", "cat", "apply_patch"]
    assert parse_request({"messages": [], "functions": [{"name": "f"}]}, Endpoint.OPENAI_CHAT).tool_names() == ["f"]


def test_tool_outputs() -> None:
    outs = view().tool_outputs()
    assert [(o.location, o.tool_name, o.tool_args, o.call_id, o.text, o.query_context) for o in outs] == [
        (("messages", 4), "ls", '{"path": "."}', "call_1", "a.txt\nb.txt\n日本.txt", "Liste les fichiers à la racine"),
        (("messages", 5), "cat", '{"path": "a.txt"}', "call_2", "line 1\nline 2", "Liste les fichiers à la racine"),
        (("messages", 8), "legacy", "{}", None, "old style output", "Merci 🙏"),
        (("messages", 9), None, "", "call_missing", "orphan", "Merci 🙏"),
    ]
    assert not any(o.is_error for o in outs)


def test_replacement_keeps_style_and_everything_else() -> None:
    r = view()
    first, second, legacy, _ = r.tool_outputs()
    r.replace_tool_output(first, "2 fichiers…")
    out = dumps(r.doc, detect_style(BODY))
    assert out == BODY.replace(b'"a.txt\\nb.txt\\n\\u65e5\\u672c.txt"', b'"2 fichiers\\u2026"')
    r.replace_tool_output(second, "both lines")
    assert r.doc["messages"][5]["content"] == [{"type": "text", "text": "both lines"}]
    r.replace_tool_output(legacy, "new")
    assert r.doc["messages"][8]["content"] == "new"


def test_untouched_round_trip_is_identical() -> None:
    r = view()
    r.tool_outputs()
    assert dumps(r.doc, detect_style(BODY)) == BODY


def test_stale_location() -> None:
    r = view()
    first = r.tool_outputs()[0]
    r.doc["messages"].insert(0, {"role": "system", "content": "x"})
    with pytest.raises(StaleLocationError):
        r.replace_tool_output(first, "x")


def test_user_texts() -> None:
    r = view()
    assert r.user_texts() == [(("messages", 2, 0), "Liste les fichiers à la racine"), (("messages", 6), "Merci 🙏")]
    r.replace_user_text(("messages", 6), "ok")
    r.replace_user_text(("messages", 2, 0), "liste")
    assert r.doc["messages"][6]["content"] == "ok"
    assert r.doc["messages"][2]["content"][0]["text"] == "liste"
    assert r.doc["messages"][2]["content"][1]["type"] == "image_url"
    with pytest.raises(StaleLocationError):
        r.replace_user_text(("messages", 4), "a tool message")
    with pytest.raises(StaleLocationError):
        r.replace_user_text(("messages", 2, 1), "an image part")


def test_odd_shapes_never_crash() -> None:
    doc = {"messages": [None, {"role": "assistant", "tool_calls": [None, {"id": 3}, {"id": "c", "function": "x"}]},
                        {"role": "assistant", "tool_calls": "nope", "function_call": [1]},
                        {"role": "tool", "tool_call_id": "c", "content": {"odd": True}},
                        {"role": "tool"}, {"role": "user", "content": 5}, {"role": "function", "name": 1}],
           "tools": [None, {"type": "function"}, {"function": {"name": 2}}], "functions": "no"}
    r = parse_request(doc, Endpoint.OPENAI_CHAT)
    assert r is not None and r.tool_names() == [] and r.system_text() == "" and r.user_texts() == []
    outs = r.tool_outputs()
    assert [(o.call_id, o.tool_name, o.text) for o in outs] == [("c", None, ""), (None, None, ""), (None, None, "")]
    for out in outs:
        r.replace_tool_output(out, "ok")
    assert [o.text for o in r.tool_outputs()] == ["ok"] * 3
