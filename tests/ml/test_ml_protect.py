"""Span protection around LLMLingua-2 (pure code, no model needed)."""

from __future__ import annotations

import pytest

from headroom_core.ml.llmlingua import model_rate, split_pieces
from headroom_core.ml.protect import PLACEHOLDER, protect, restore, tidy

DOC = (
    "# Title\n\nSee `foo_bar()` in /usr/lib/x.py, then (MyClass) run.\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n- item one\n- item 2\n\n"
    "```python\nx = 1\n```\nend [NEW3] [CLS].\n"
)


def _drop_every_other_word(protected_text: str) -> str:
    words = protected_text.split()
    kept = [w for i, w in enumerate(words) if w == PLACEHOLDER or i % 2 == 0]
    return " ".join(kept)


@pytest.mark.parametrize("text,force", [
    (DOC, ["foo_bar()", "/usr/lib/x.py", "MyClass", "2"]),
    ("plain words only", []),
    ("  leading and trailing  \n", []),
    ("", []),
    ("[NEW0] literal placeholder [NEW0]", []),
])
def test_identity_round_trip(text, force):
    p = protect(text, force)
    assert restore(p.text, p) == text


def test_spans_survive_word_dropping_in_order():
    force = ["foo_bar()", "/usr/lib/x.py", "MyClass", "OPS-1234"]
    text = DOC + "Ticket OPS-1234 mentions MyClass again.\n"
    p = protect(text, force)
    out = restore(tidy(_drop_every_other_word(p.text)), p)
    for s in force:
        assert out.count(s) == text.count(s)
    # the document's shape is kept: lines, table rows, the fenced block, list markers
    assert out.count("\n") == text.count("\n")
    for line in ("| a | b |", "|---|---|", "| 1 | 2 |", "```python\nx = 1\n```", "# "):
        assert line in out
    assert "\n- " in out


def test_forced_word_is_matched_at_word_edges_only():
    p = protect("the id of the video", ["id"])
    assert p.spans == ("id",)


def test_longest_forced_string_wins():
    p = protect("version v2.3.1 ships", ["2", "v2.3.1"])
    assert p.spans == ("v2.3.1",)


def test_lost_placeholder_fails_open():
    p = protect("keep MyClass here", ["MyClass"])
    assert restore("keep here", p) is None


def test_spacing_around_restored_spans():
    p = protect("call (MyClass) now, or MyClass.run() later", ["MyClass", "MyClass.run()"])
    # model output as a word-piece tokenizer writes it, with a neighbour ("or") dropped
    out = restore(tidy(f"call ( {PLACEHOLDER} ) now , {PLACEHOLDER} later"), p)
    assert out == "call (MyClass) now, MyClass.run() later"


@pytest.mark.parametrize("limit", [7, 50, 300])
def test_split_pieces_rejoins_exactly(limit):
    text = "First line here.\nSecond line is a little longer. It has two sentences.\n" * 20
    pieces = split_pieces(text, limit)
    assert "".join(pieces) == text
    assert all(len(p) <= limit for p in pieces)


def test_model_rate_aims_at_the_prose_share():
    assert model_rate(0.3, 1000, 0) == pytest.approx(0.3)
    # with 200 forced tokens, keeping 300 prose tokens means keeping 500 of 1200
    assert model_rate(0.3, 1000, 200) == pytest.approx(500 / 1200)
    assert model_rate(0.3, 0, 0) == 1.0
