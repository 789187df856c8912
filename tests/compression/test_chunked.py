"""Piecewise string operations give exactly the results of the whole-text calls."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from headroom_core.compression import chunked

ALPHABET = ["a", "B", " ", "\n", "\n", "\t", "é", "Σ", "ΑΣ ", "İ", "日本", "😀", "\r", "err", "ERROR", "x\n\n",
            "\ud800", "0x1F", "  \n"]


def text_of(seed: int, size: int = 3000) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(ALPHABET) for _ in range(size)) + rng.choice(["", "\n", "\n\n", " "])


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("chunk", [1, 7, 64])
def test_whole_text_results(seed, chunk):
    text = text_of(seed)
    assert chunked.split_lines(text, chunk) == text.split("\n")
    assert chunked.encoded_lines(text, b"0123456789abcdef", chunk) == \
        text.encode("utf-8", "surrogatepass").translate(None, b"0123456789abcdef").split(b"\n")
    assert chunked.lower(text, chunk) == text.lower()
    for needle in ("err", "\n\n", "a", "日本😀"):
        expected = [m.start() for m in re.finditer(re.escape(needle), text)]
        assert list(chunked.find_all(text, needle, chunk=chunk)) == expected
        assert chunked.contains(text, needle, chunk=chunk) == (needle in text)
    assert list(chunked.find_all(text, "err", 100, 2000, chunk=chunk)) == \
        [m.start() for m in re.compile("err").finditer(text, 100, 2000)]
    rx = re.compile(r"(?<![a-z])err(?:or)?\b|\d+")
    assert [m.span() for m in chunked.finditer(rx, text, 12, chunk=chunk)] == [m.span() for m in rx.finditer(text)]
    keys = text.split("\n")
    assert chunked.counter(keys, chunk) == Counter(keys)


@pytest.mark.parametrize("text", ["", " ", "\n\n \t", "x", "  x  ", "\n" * 10000 + "a b" + " " * 9000,
                                  " \u3000 mixed unicode space \u2028", "a" * 20000])
@pytest.mark.parametrize("step", [1, 3, 4096])
def test_strip_bounds(text, step):
    a, b = chunked.strip_bounds(text, step)
    assert text[a:b] == text.strip()


def test_a_line_longer_than_a_chunk_is_one_piece():
    text = "short\n" + "y" * 1000 + "\nend"
    assert list(chunked.line_pieces(text, 64)) == [(0, 6), (6, 1007), (1007, 1010)]
    assert chunked.split_lines(text, 64) == text.split("\n")


@pytest.mark.parametrize("n", [1, 2, 3, 10, 11, 100, 101])
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_sorted_median(n, chunk):
    rng = random.Random(n * 31 + chunk)
    xs = [rng.choice([rng.random(), float(rng.randint(-5, 5))]) for _ in range(n)]
    s = sorted(xs)
    expected = s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    assert chunked.sorted_median(xs, chunk) == expected


@pytest.mark.parametrize("seed", range(5))
def test_lower_of_a_range(seed):
    text = text_of(seed)
    for a, b in ((0, len(text)), (17, 2500), (100, 101), (5, 5)):
        assert chunked.lower(text, 13, a, b) == text[a:b].lower()
        assert "".join(text[x:y] for x, y in chunked.line_pieces(text, 13, a, b)) == text[a:b]


def test_release_empties_only_lists_nobody_else_holds():
    big = chunked.release_later(list(range(chunked.RELEASE_SLICE * 3 + 5)))
    kept = chunked.release_later(list(range(chunked.RELEASE_SLICE + 1)))
    small = chunked.release_later([1, 2, 3])  # too small to register
    big_id = id(big)
    del big
    chunked.release()
    assert len(kept) == chunked.RELEASE_SLICE + 1 and small == [1, 2, 3]
    assert chunked.mark() == 0 and big_id  # the registry is empty again


def test_a_nested_release_leaves_the_outer_lists():
    outer = chunked.release_later(list(range(chunked.RELEASE_SLICE + 1)))
    since = chunked.mark()
    inner = chunked.release_later(list(range(chunked.RELEASE_SLICE + 1)))
    del inner
    chunked.release(since)
    assert chunked.mark() == 1 and len(outer) == chunked.RELEASE_SLICE + 1
    del outer
    chunked.release()
    assert chunked.mark() == 0


def test_gc_paused_nests_and_restores_the_collector():
    import gc

    assert gc.isenabled()
    with chunked.gc_paused():
        assert not gc.isenabled()
        with chunked.gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    with chunked.gc_paused(active=False):
        assert gc.isenabled()
    gc.disable()
    try:
        with chunked.gc_paused():
            pass
        assert not gc.isenabled()  # left as it was
    finally:
        gc.enable()
