"""wire.openai_responses: input items, call_id pairing, plain-string input, fidelity."""

from __future__ import annotations

from pathlib import Path

import pytest

from headroom_core.jsonfmt import detect_style, dumps, loads
from headroom_core.wire import Endpoint, StaleLocationError, parse_request
from headroom_core.wire.openai_responses import OpenAIResponsesRequest

# As Codex sends it: compact, non-ASCII as is, reasoning items with encrypted content.
BODY = (Path(__file__).parent / "data" / "openai_responses_request.json").read_bytes()


def view() -> OpenAIResponsesRequest:
    request = parse_request(loads(BODY), Endpoint.OPENAI_RESPONSES)
    assert isinstance(request, OpenAIResponsesRequest)
    return request


def test_basic_properties() -> None:
    r = view()
    assert (r.model, r.stream, r.max_tokens) == ("gpt-5-codex", True, 2048)
    assert r.messages is r.doc["input"]
    assert r.system_text() == "You are Codex.\nSandbox: read-only."
    assert r.tool_names() == ["shell", "apply_patch"]


def test_tool_outputs() -> None:
    outs = view().tool_outputs()
    assert [(o.location, o.tool_name, o.tool_args, o.call_id, o.text, o.query_context) for o in outs] == [
        (("input", 4), "shell", '{"command":["pytest","-x"]}', "call_a",
         "FAILED test_x.py::test_y — assert 1 == 2", "Pourquoi le test échoue ?"),
        (("input", 6), "apply_patch", "*** Begin Patch", "call_b", "Done\n1 file", "Pourquoi le test échoue ?"),
        (("input", 8), None, "", "call_zzz", "orphan", "Et maintenant ?"),
    ]


def test_replacement_and_fidelity() -> None:
    r = view()
    first, second, _ = r.tool_outputs()
    r.replace_tool_output(first, "1 failed: test_y")
    assert dumps(r.doc, detect_style(BODY)) == BODY.replace(
        '"FAILED test_x.py::test_y — assert 1 == 2"'.encode(), b'"1 failed: test_y"')
    r.replace_tool_output(second, "patched")
    assert r.doc["input"][6]["output"] == [
        {"type": "input_text", "text": "patched"},
        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]


def test_untouched_round_trip_is_identical() -> None:
    r = view()
    r.tool_outputs()
    r.user_texts()
    assert dumps(r.doc, detect_style(BODY)) == BODY


def test_user_texts() -> None:
    r = view()
    assert r.user_texts() == [(("input", 1, 0), "Pourquoi le test échoue ?"), (("input", 7), "Et maintenant ?")]
    r.replace_user_text(("input", 7), "Et alors ?")
    r.replace_user_text(("input", 1, 0), "Pourquoi ?")
    assert r.user_texts() == [(("input", 1, 0), "Pourquoi ?"), (("input", 7), "Et alors ?")]
    with pytest.raises(StaleLocationError):
        r.replace_user_text(("input", 9, 0), "assistant text")
    with pytest.raises(StaleLocationError):
        r.replace_user_text(("input",), "input is a list")


def test_plain_string_input() -> None:
    r = parse_request({"model": "gpt-4.1", "input": "Résume ce texte : …", "instructions": 3}, Endpoint.OPENAI_RESPONSES)
    assert r is not None
    assert (r.messages, r.tool_outputs(), r.system_text()) == ([], [], "")
    assert r.user_texts() == [(("input",), "Résume ce texte : …")]
    r.replace_user_text(("input",), "court")
    assert r.doc["input"] == "court"


def test_stale_and_odd_shapes() -> None:
    r = view()
    first = r.tool_outputs()[0]
    r.doc["input"][4] = {"type": "function_call_output", "call_id": "other", "output": "x"}
    with pytest.raises(StaleLocationError):
        r.replace_tool_output(first, "x")
    doc = {"input": [None, 1, {"type": "function_call", "call_id": 5}, {"type": "function_call", "call_id": "k", "arguments": {"a": 1.5}},
                     {"type": "function_call_output", "call_id": "k", "output": None},
                     {"type": "function_call_output"}, {"role": "user", "content": [{"type": "input_text"}]}],
           "tools": "x"}
    r = parse_request(doc, Endpoint.OPENAI_RESPONSES)
    outs = r.tool_outputs()
    assert [(o.call_id, o.tool_args, o.text) for o in outs] == [("k", '{"a":1.5}', ""), (None, "", "")]
    for out in outs:
        r.replace_tool_output(out, "ok")
    assert [o.text for o in r.tool_outputs()] == ["ok", "ok"]
    assert r.tool_names() == [] and r.user_texts() == []
