"""Chunked token counts equal whole-text counts."""

from __future__ import annotations

import json
import random

import pytest

from headroom_core.compression import counting
from headroom_core.ccr import content_hash
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


# --- the estimate the engine decides on ------------------------------------------------------

def _log(lines: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "\n".join(f"2025-03-14T09:{i % 60:02d}:{rng.randint(0, 59):02d}Z {rng.choice(['INFO', 'DEBUG', 'WARN'])} "
                     f"svc-{rng.randint(1, 9)} request {rng.getrandbits(64):x} took {rng.randint(1, 900)}ms"
                     for i in range(lines))


def _json_rows(n: int) -> str:
    return json.dumps([{"id": i, "user": f"user{i % 97}", "state": "open", "labels": ["bug", "p2"],
                        "body": "Steps to reproduce: open the page and click save. " * (i % 3)}
                       for i in range(n)], separators=(",", ":"))


def _mixed(seed: int) -> str:
    """Blocks of very different density: scripts, hex, whitespace, numbers."""
    rng = random.Random(seed)
    blocks = []
    for _ in range(rng.randint(5, 40)):
        m = rng.randint(200, 20000)
        kind = rng.randrange(5)
        blocks.append(" ".join(rng.choice(["alpha", "beta", "request", "error"]) for _ in range(m // 6)) if kind == 0
                      else "".join(rng.choice("0123456789abcdef") for _ in range(m)) if kind == 1
                      else "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(m // 3)) if kind == 2
                      else " " * m if kind == 3 else ",".join(str(rng.randint(0, 10**6)) for _ in range(m // 7)))
    return "\n".join(blocks)


@pytest.mark.parametrize("text,tolerance", [(_log(6000), 0.05), (_json_rows(3000), 0.05),
                                            *[(_mixed(seed), 0.25) for seed in range(6)]])
def test_estimate_is_close_and_a_pure_function_of_the_text(text, tolerance):
    digest = content_hash(text)
    exact = count_text(text)
    estimate = counting.estimate(text, digest)
    assert abs(estimate / exact - 1) <= tolerance
    assert counting.estimate(text, digest) == estimate


def test_estimate_of_a_short_text_is_its_count():
    text = _log(100)
    assert len(text) <= counting.EXACT_CHARS
    assert counting.estimate(text, content_hash(text)) == count_text(text)


def test_text_size_counts_exactly_only_what_a_decision_needs():
    memo = counting.CountMemo()
    short = _log(50)
    size = counting.TextSize(short, content_hash(short), None, memo)
    assert size.exact and size.value == count_text(short)

    text = _log(6000)
    exact = count_text(text)
    digest = content_hash(text)
    size = counting.TextSize(text, digest, None, memo)
    assert not size.exact and memo.peek(digest, None) is None  # nothing counted whole
    assert size.at_least(len(text) / counting.MAX_TOKEN_BYTES)  # certain without counting
    assert size.at_least(exact / 3) and not size.at_least(exact * 3) and not size.exact
    assert abs(size.value / exact - 1) < 0.1
    assert size.at_least(exact) and not size.at_least(exact + 1)  # too close to call: counted
    assert size.exact and size.value == exact and memo.peek(digest, None) == exact
    # the next sight of the same text starts from the remembered count
    again = counting.TextSize(text, digest, None, memo)
    assert again.exact and again.value == exact


@pytest.mark.parametrize("seed", range(6))
def test_decisions_on_estimates_agree_with_the_exact_count(seed):
    text = _mixed(seed)
    exact = count_text(text)
    for factor in (0.1, 0.3, 0.5, 0.8, 0.95, 1.0, 1.05, 1.3, 2.0, 4.0):
        size = counting.TextSize(text, content_hash(text), None, counting.CountMemo())
        assert size.at_least(exact * factor) == (exact >= exact * factor), factor


def test_text_size_settle_gives_the_exact_count():
    memo = counting.CountMemo()
    text = _json_rows(3000)
    size = counting.TextSize(text, content_hash(text), None, memo)
    assert not size.exact
    assert size.settle() == count_text(text) == size.value and size.exact
