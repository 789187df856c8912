"""Chunked token counts equal whole-text counts."""

from __future__ import annotations

import json
import random

import pytest

from headroom_core.compression import counting
from headroom_core.tokens import count_text

PIECES = ["INFO ok", "  indented", "\tTab", "/usr/bin/x", "}", "{", "", " ", "// comment", "ERROR 500",
          "é ünïcödé", "日本語のテキスト", "12345", "   ", "a/b/c", "\r", "x\r", "#!/bin/sh", "- item", ">>> prompt"]


@pytest.mark.parametrize("seed", range(12))
def test_chunked_count_equals_whole_count(seed):
    rng = random.Random(seed)
    lines = [rng.choice(PIECES) + (" " + str(rng.randint(0, 10**6)) if rng.random() < 0.5 else "")
             for _ in range(6000)]
    text = "\n".join(lines) + rng.choice(["", "\n", "\n\n", "  "])
    cuts = counting.safe_cuts(text, chunk=997)
    assert cuts[0] == 0 and cuts[-1] == len(text) and len(cuts) > 10
    chunked = sum(count_text(text[a:b]) for a, b in zip(cuts, cuts[1:]))
    assert chunked == count_text(text)


def test_count_exact_on_a_large_text_and_memo():
    text = "\n".join(f"2025-03-14T09:00:00Z INFO request {i} /api/v1/x" for i in range(40000))
    assert len(text) > counting.CHUNK
    assert counting.count_exact(text) == count_text(text)
    memo = counting.CountMemo(size=1)
    assert memo.count("d1", "abc def", None) == count_text("abc def")
    assert memo.count("d1", "ignored when remembered", None) == count_text("abc def")
    memo.count("d2", "x", None)
    assert memo.count("d1", "now counted again", None) == count_text("now counted again")


@pytest.mark.parametrize("seed", range(6))
def test_text_without_newlines_is_cut_between_punctuation_and_letters(seed):
    rng = random.Random(seed)
    alphabet = list("abcXYZ019 \t/\\'\"{}[]()<>.,;:!?-_=+*&^%$#@~`|") + ["é", "日", "😀", "'s", '","', '},{"']
    text = "".join(rng.choice(alphabet) for _ in range(20000))
    cuts = counting.safe_cuts(text, chunk=301)
    assert len(cuts) > 10
    assert sum(count_text(text[a:b]) for a, b in zip(cuts, cuts[1:])) == count_text(text)
    compact = json.dumps([{"id": i, "name": f"n{i}", "tags": ["a", "b"], "ok": True} for i in range(3000)],
                         separators=(",", ":"))
    cuts = counting.safe_cuts(compact, chunk=997)
    assert len(cuts) > 10
    assert sum(count_text(compact[a:b]) for a, b in zip(cuts, cuts[1:])) == count_text(compact)
