"""tokens.py: offline encoders identical to tiktoken's, model mapping, whole-request counts."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import tiktoken

from headroom_core import tokens
from headroom_core.wire.common import Endpoint

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ("Hello, world! The quick brown fox — 日本語のテキスト, emoji 🎉, "
          "code: def f(x):\n    return x ** 2\n\n\n   trailing   \r\n<|endoftext|> done")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> str:
    return tokens.ensure_tiktoken_cache(str(tmp_path_factory.mktemp("tiktoken")))


def test_get_encoding_is_cached_and_offline() -> None:
    enc = tokens.get_encoding()
    assert enc is tokens.get_encoding("o200k_base")
    assert enc.name == "o200k_base"
    assert enc.n_vocab == 200019
    assert tokens.get_encoding("cl100k_base").n_vocab == 100277
    assert enc.decode(enc.encode_ordinary(SAMPLE)) == SAMPLE


def test_seeded_cache_uses_tiktoken_file_names(seeded: str) -> None:
    for name, spec in tokens._SPECS.items():
        key = hashlib.sha1(
            f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken".encode()).hexdigest()
        data = (Path(seeded) / key).read_bytes()
        assert hashlib.sha256(data).hexdigest() == spec.sha256


def test_seeding_twice_leaves_good_files_alone(seeded: str) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in Path(seeded).iterdir()}
    assert tokens.ensure_tiktoken_cache(seeded) == seeded
    assert {p.name: p.stat().st_mtime_ns for p in Path(seeded).iterdir()} == before


def test_corrupt_cache_file_is_rewritten(tmp_path: Path) -> None:
    directory = tokens.ensure_tiktoken_cache(str(tmp_path))
    victim = next(Path(directory).iterdir())
    victim.write_bytes(b"garbage")
    tokens.ensure_tiktoken_cache(directory)
    assert hashlib.sha256(victim.read_bytes()).hexdigest() in {s.sha256 for s in tokens._SPECS.values()}


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_same_tokens_as_tiktokens_own_constructor(seeded: str, name: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # tiktoken's own constructor (tiktoken_ext.openai_public) reading the seeded cache.
    from tiktoken_ext import openai_public

    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", seeded)
    theirs = getattr(openai_public, name)()
    ours = tokens.get_encoding(name)
    assert ours._pat_str == theirs["pat_str"]
    assert ours._special_tokens == theirs["special_tokens"]
    assert ours._mergeable_ranks == theirs["mergeable_ranks"]


def test_third_party_get_encoding_works_offline(seeded: str) -> None:
    # A fresh interpreter, as llmlingua would call it: only TIKTOKEN_CACHE_DIR is set.
    code = "import tiktoken; print(len(tiktoken.get_encoding('cl100k_base').encode('hello world')))"
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": seeded, "HTTPS_PROXY": "http://127.0.0.1:9"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "2"


def test_seed_script_prints_directory(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "seed_tiktoken.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


@pytest.mark.parametrize("model,expected", [
    ("gpt-4", "cl100k_base"), ("gpt-4-0613", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
    ("gpt-3.5-turbo", "cl100k_base"), ("text-embedding-ada-002", "cl100k_base"),
    ("openai/gpt-4", "cl100k_base"),
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"), ("gpt-4.1", "o200k_base"),
    ("o3-mini", "o200k_base"), ("gpt-5", "o200k_base"),
    ("claude-sonnet-4-5-20250929", "o200k_base"), ("claude-3-haiku-20240307", "o200k_base"),
    ("davinci", "o200k_base"),  # tiktoken says r50k_base, which we do not ship
    ("", "o200k_base"), (None, "o200k_base"),
])
def test_encoding_name_for_model(model: str | None, expected: str) -> None:
    assert tokens.encoding_name_for_model(model) == expected


def test_count_text() -> None:
    assert tokens.count_text("") == 0
    assert tokens.count_text("hello world") == 2
    # Special-token text is ordinary text: never raises, counted as its pieces.
    assert tokens.count_text("<|endoftext|>") > 1
    assert tokens.count_text(SAMPLE, "gpt-4") == len(tokens.get_encoding("cl100k_base").encode_ordinary(SAMPLE))


@pytest.mark.parametrize("name,model", [("o200k_base", None), ("cl100k_base", "gpt-4")])
@pytest.mark.parametrize("text", [SAMPLE, "<|endoftext|><|endofprompt|><|fim_prefix|>", "é" * 3000,
                                  "a lone \ud800 surrogate, from a JSON escape",
                                  '[{"id":1,"x":"' + "ab " * 5000 + '"}]'])
def test_the_counter_counts_what_encode_ordinary_returns(name: str, model: str | None, text: str) -> None:
    expected = len(tokens.get_encoding(name).encode_ordinary(text))
    assert tokens.counter_for(model)(text) == expected == tokens.count_text(text, model)


def test_counter_without_tiktokens_buffer_falls_back_to_the_list(monkeypatch: pytest.MonkeyPatch) -> None:
    class Plain:  # an encoder from a tiktoken without the buffer API
        _core_bpe = object()
        encode_ordinary = staticmethod(tokens.get_encoding().encode_ordinary)

    monkeypatch.setattr(tokens, "get_encoding", lambda name: Plain())
    assert tokens._counter("o200k_base")(SAMPLE) == len(Plain.encode_ordinary(SAMPLE))


def test_long_texts_are_counted_in_pieces_with_the_same_total() -> None:
    text = "\n".join(f"line {i}: value={i * 7} ok" for i in range(40000))
    assert len(text) > 1 << 18
    assert tokens.count_text(text) == len(tokens.get_encoding().encode_ordinary(text))


def _count(*pieces: str, model: str | None = None) -> int:
    return tokens.count_text("\n".join(pieces), model)


def test_count_request_anthropic() -> None:
    tool = {"name": "read_file", "description": "Read a file", "input_schema": {"type": "object"}}
    doc = {
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
        "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
        "tools": [tool],
        "messages": [
            {"role": "user", "content": "Read a.py"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Need the file.", "signature": "c2lnbmF0dXJl"},
                {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.py", "n": 2}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": [
                    {"type": "text", "text": "print('hi')"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo" * 500}}]},
                {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain doc"}}]},
        ],
    }
    expected = _count("You are terse.", "Read a.py", "Need the file.", "read_file",
                      '{"path":"a.py","n":2}', "print('hi')", "plain doc",
                      '{"name":"read_file","description":"Read a file","input_schema":{"type":"object"}}')
    assert tokens.count_request(doc, Endpoint.ANTHROPIC_MESSAGES) == expected
    assert tokens.count_request(doc, Endpoint.ANTHROPIC_COUNT_TOKENS) == expected


def test_count_request_openai_chat_uses_model_encoding() -> None:
    doc = {
        "model": "gpt-4",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is in this image?"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{\"dir\":\".\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "a.py\nb.py"},
        ],
        "tools": [{"type": "function", "function": {"name": "ls", "parameters": {}}}],
        "temperature": 0.2,
    }
    pieces = ["Be brief.", "What is in this image?", "ls", '{"dir":"."}', "a.py\nb.py",
              '{"type":"function","function":{"name":"ls","parameters":{}}}']
    assert tokens.count_request(doc, Endpoint.OPENAI_CHAT) == _count(*pieces, model="gpt-4")


def test_count_request_responses_and_plain_string_input() -> None:
    doc = {"model": "gpt-4.1", "instructions": "Answer in French.", "input": "Bonjour, ça va ?"}
    assert tokens.count_request(doc, Endpoint.OPENAI_RESPONSES) == _count("Answer in French.", "Bonjour, ça va ?")
    doc = {"model": "o4-mini", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "list files"},
                                     {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}]},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA" * 100},
        {"type": "function_call", "call_id": "c1", "name": "shell", "arguments": "{\"cmd\":\"ls\"}"},
        {"type": "function_call_output", "call_id": "c1", "output": "x.txt"},
    ]}
    assert tokens.count_request(doc, Endpoint.OPENAI_RESPONSES) == _count(
        "list files", "shell", '{"cmd":"ls"}', "x.txt")


def test_count_request_other_and_odd_shapes() -> None:
    doc = {"model": "text-embedding-3-small", "input": ["alpha beta", "gamma"], "encoding_format": "float"}
    assert tokens.count_request(doc, Endpoint.OPENAI_OTHER) == _count("alpha beta", "gamma", model="gpt-4")
    for odd in (None, [], "text", {"messages": "not a list", "tools": {"x": 1}}, {"messages": [None, 3, ["x"]]}):
        assert tokens.count_request(odd, Endpoint.ANTHROPIC_MESSAGES) >= 0


def test_count_request_counts_a_long_text_once_per_content() -> None:
    from headroom_core.compression.counting import COUNTS

    COUNTS.clear()
    big = "\n".join(f"line {i}: status ok" for i in range(3000)) + "}"
    doc = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": big},
                                           {"role": "user", "content": "and?"}]}
    assert tokens.count_request(doc, Endpoint.OPENAI_CHAT) == _count("hi", big, "and?")
    assert COUNTS.peek(tokens.text_digest(big), "gpt-4o") == tokens.count_text(big)
    COUNTS.put(tokens.text_digest(big), "gpt-4o", 7)  # remembered: not counted again
    assert tokens.count_request(doc, Endpoint.OPENAI_CHAT) == \
        _count("hi", big, "and?") - tokens.count_text(big) + 7
    COUNTS.clear()


ODD_STARTS = ["plain", " space", "\nnewline", "/slash", "", "\ttab", "}", "  \n  ", "é", "日本", "word\n", "x" * 3000,
              "\n" + "y" * 3000, "z" * 2500 + "}", "/" + "w" * 2100 + "\n\n", "  " + "q\n" * 1200 + "  "]


@pytest.mark.parametrize("seed", range(30))
@pytest.mark.parametrize("model", [None, "gpt-4"])
def test_count_request_text_by_text_equals_the_joined_count(seed: int, model: str | None) -> None:
    import random

    from headroom_core.compression.counting import COUNTS

    rng = random.Random(seed)
    pieces = [rng.choice(ODD_STARTS) + rng.choice(["", " tail", "}\n", "\n"]) for _ in range(rng.randint(1, 12))]
    doc = {"model": model or "gpt-4o", "messages": [{"role": "user", "content": p} for p in pieces]}
    for _ in range(2):  # counted, then from the memo
        assert tokens.count_request(doc, Endpoint.OPENAI_CHAT) == tokens.count_text("\n".join(pieces), model)
    COUNTS.clear()


@pytest.mark.parametrize("text", ["", "abc", "é日😀\ud800", "x" * (1 << 19) + "é" * 1000])
def test_text_digest_is_the_ccr_content_hash(text: str) -> None:
    from headroom_core.ccr import content_hash

    assert tokens.text_digest(text) == content_hash(text)


def test_count_json_value() -> None:
    assert tokens.count_json_value({"a": [1, 2]}) == tokens.count_text('{"a":[1,2]}')
    assert tokens.count_json_value("already text") == tokens.count_text("already text")


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("model", [None, "gpt-4"])
def test_count_request_on_compact_json_texts(seed: int, model: str | None) -> None:
    """Texts without newlines (compact JSON renderings) split at punctuation-letter boundaries."""
    import json
    import random

    from headroom_core.compression.counting import COUNTS

    rng = random.Random(seed)
    alphabet = ["a", "Z", "é", "日", "0", "'s", " ", "/", '"', "{", "}", "[", "]", ",", ":", "\\", "!", "-"]

    def value(depth: int = 0):
        k = rng.randrange(6 if depth < 3 else 3)
        if k == 0:
            return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30)))
        if k == 1:
            return rng.choice([1, -2.5, True, None])
        if k == 2:
            return "x" * rng.randrange(0, 50)
        if k == 3:
            return [value(depth + 1) for _ in range(rng.randrange(0, 5))]
        return {"".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 6))): value(depth + 1)
                for _ in range(rng.randrange(0, 5))}

    pieces = [json.dumps([value() for _ in range(rng.randrange(60, 200))], separators=(",", ":"),
                         ensure_ascii=rng.random() < 0.5) for _ in range(3)]
    pieces.insert(rng.randrange(4), rng.choice(["next", "}tail", "  spaced", "/path", "Word"]))
    doc = {"model": model or "gpt-4o", "messages": [{"role": "user", "content": p} for p in pieces]}
    for _ in range(2):
        assert tokens.count_request(doc, Endpoint.OPENAI_CHAT) == tokens.count_text("\n".join(pieces), model)
    COUNTS.clear()
