"""The request engine on the three wire formats: what is compressed, what is kept, what is stored."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import compression_samples as S
from headroom_core.compression import engine
from headroom_core.compression.engine import CompressionConfig, compress_output, compress_request
from headroom_core.compression.markers import find_markers
from headroom_core.wire.common import Endpoint
from headroom_core.wire.request import parse_request

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
import workloads as W  # noqa: E402

CFG = CompressionConfig(budget_ms=None)


def anthropic_doc(outputs: list[tuple[str, dict, str]], question: str = "What broke?") -> dict:
    messages: list[dict] = [{"role": "user", "content": question}]
    for k, (name, args, text) in enumerate(outputs):
        messages.append({"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": f"toolu_{k}", "name": name, "input": args}]})
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": text}]})
    return {"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "You are helpful. " * 200,
            "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
            "messages": messages}


def openai_chat_doc(name: str, args: dict, text: str) -> dict:
    return {"model": "gpt-4o", "messages": [
        {"role": "system", "content": "Be brief. " * 300},
        {"role": "user", "content": "Check the logs"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": text}]}


def responses_doc(name: str, args: dict, text: str) -> dict:
    return {"model": "gpt-4.1", "instructions": "Be brief.", "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Check the logs"}]},
        {"type": "function_call", "call_id": "c1", "name": name, "arguments": json.dumps(args)},
        {"type": "function_call_output", "call_id": "c1", "output": text}]}


def run(doc: dict, endpoint: Endpoint, ccr, tenant: str = "t", config: CompressionConfig = CFG):
    req = parse_request(doc, endpoint)
    return req, compress_request(req, tenant=tenant, ccr=ccr, config=config)


def test_anthropic_tool_results_are_compressed_and_originals_stored(ccr):
    log, must = S.klog_with_panic()
    doc = anthropic_doc([("Bash", {"command": "kubectl logs ctrl"}, log)])
    original_doc = copy.deepcopy(doc)
    req, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert report.changed and len(report.transforms) == 1
    t = report.transforms[0]
    assert (t.kind, t.tool_name, t.message_index, t.target) == ("log", "Bash", 2, "tool_result")
    assert t.tokens_after < t.tokens_before and report.tokens_after < report.tokens_before
    new_text = doc["messages"][2]["content"][0]["content"]
    assert all(m in new_text for m in must)
    assert find_markers(new_text) == [t.hash]
    assert ccr.get("t", t.hash).text == log
    # nothing else in the request moved
    assert doc["system"] == original_doc["system"] and doc["tools"] == original_doc["tools"]
    assert doc["messages"][1] == original_doc["messages"][1]


@pytest.mark.parametrize("make,endpoint,path", [
    (openai_chat_doc, Endpoint.OPENAI_CHAT, ("messages", 3, "content")),
    (responses_doc, Endpoint.OPENAI_RESPONSES, ("input", 2, "output")),
])
def test_openai_formats(make, endpoint, path, ccr):
    log, must = S.nginx_access()
    doc = make("exec_command", {"cmd": "docker logs web"}, log)
    req, report = run(doc, endpoint, ccr)
    new_text = doc[path[0]][path[1]][path[2]]
    assert report.changed and all(m in new_text for m in must)
    for h in find_markers(new_text):
        assert ccr.get("t", h).text == log


def test_protected_small_and_retrieved_outputs_are_left_alone(ccr):
    src, _ = S.python_source()
    log, _ = S.klog_with_panic()
    doc = anthropic_doc([("Read", {"file_path": "a.py"}, src), ("Bash", {"command": "echo hi"}, "hi\n" * 10),
                         ("headroom_retrieve", {"hash": "ab" * 8}, log), ("Bash", {"command": "cat a.py"}, src)])
    before = copy.deepcopy(doc)
    req, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert not report.changed and doc == before
    assert len(report.skipped) == 3


def test_compress_tools_override_protection(ccr):
    src, must = S.python_source()
    doc = anthropic_doc([("Read", {"file_path": "a.py"}, src)])
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr, config=CompressionConfig(compress_tools=("Read",), budget_ms=None))
    assert report.changed and report.transforms[0].kind == "code"


def test_min_savings_keeps_the_original(ccr):
    text, _ = S.git_diff_special()  # saves about half
    doc = anthropic_doc([("Bash", {"command": "git diff"}, text)])
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr, config=CompressionConfig(min_savings=0.9, budget_ms=None))
    assert not report.changed


def test_a_failing_compressor_fails_open_for_that_output_only(ccr, monkeypatch):
    log, _ = S.klog_with_panic()
    runs, _ = S.github_workflow_runs()
    real = engine.compress_text

    def flaky(text, ctx, kind=None):
        if kind is not None and kind.name == "json":
            raise RuntimeError("boom")
        return real(text, ctx, kind)

    monkeypatch.setattr(engine, "compress_text", flaky)
    doc = anthropic_doc([("gh_api", {}, runs), ("Bash", {"command": "kubectl logs x"}, log)])
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert doc["messages"][2]["content"][0]["content"] == runs
    assert len(report.transforms) == 1 and report.transforms[0].kind == "log"
    assert report.errors and "RuntimeError: boom" in report.errors[0]


def test_ccr_refusal_leaves_the_output_whole():
    from headroom_core.ccr import CCRStore
    from headroom_core.storage.memory import MemoryStorage

    small_store = CCRStore(MemoryStorage(), max_entry_bytes=1000)
    log, _ = S.klog_with_panic()
    doc = anthropic_doc([("Bash", {"command": "kubectl logs x"}, log)])
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, small_store)
    assert not report.changed and doc["messages"][2]["content"][0]["content"] == log
    assert any("CCR entry cap" in s for s in report.skipped)


def test_deadline_in_the_past_times_out_without_changes(ccr):
    log, _ = S.klog_with_panic()
    doc = anthropic_doc([("Bash", {"command": "kubectl logs x"}, log)])
    req = parse_request(doc, Endpoint.ANTHROPIC_MESSAGES)
    report = compress_request(req, tenant="t", ccr=ccr, config=CFG, deadline=0.0)
    assert report.timed_out and not report.changed


def test_oversized_pasted_user_text_is_compressed(ccr):
    log, must = S.klog_with_panic()
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 100,
           "messages": [{"role": "user", "content": "Why did it crash?\n\n" + log}]}
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert report.transforms and report.transforms[0].target == "user_text"
    assert all(m in doc["messages"][0]["content"] for m in must)


def test_assistant_and_system_text_are_never_touched(ccr):
    log, _ = S.klog_with_panic()
    doc = {"model": "claude-sonnet-4-5", "max_tokens": 100, "system": log,
           "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": log}]}
    before = copy.deepcopy(doc)
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert doc == before and not report.changed


def test_rendering_depends_only_on_the_output_and_what_came_before(ccr):
    log, _ = S.klog_with_panic()
    turn = anthropic_doc([("Bash", {"command": "kubectl logs x"}, log)])
    later = copy.deepcopy(turn)
    later["messages"] += [{"role": "assistant", "content": "It panicked in sync()."},
                          {"role": "user", "content": "Now look at deployment reconciler.go:88 please"}]
    run(turn, Endpoint.ANTHROPIC_MESSAGES, ccr)
    engine.MEMO.clear()
    run(later, Endpoint.ANTHROPIC_MESSAGES, ccr, tenant="other")
    assert turn["messages"][2] == later["messages"][2]


def _render_all() -> str:
    out = []
    for gen in (W.incident_log, W.issue_json, W.db_rows, W.code_search, W.test_output, W.large_diff):
        w = gen()
        r = compress_output(w.text, tenant="t", ccr=_store(), config=CFG, tool_name=w.tool_name,
                            tool_args=json.dumps(w.tool_args), query_context=w.query)
        out.append(r.text or "")
    return hashlib.sha256("\x00".join(out).encode()).hexdigest()


def _store():
    from headroom_core.ccr import CCRStore
    from headroom_core.storage.memory import MemoryStorage

    return CCRStore(MemoryStorage())


def test_same_input_gives_byte_identical_output_twice_and_after_a_restart():
    first = _render_all()
    engine.MEMO.clear()
    assert _render_all() == first
    code = ("import sys; sys.path[:0] = ['tests/compression', 'scripts']; "
            "import test_engine as t; print(t._render_all())")
    env_hash = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"}, timeout=120)
    assert env_hash.returncode == 0, env_hash.stderr[-2000:]
    assert env_hash.stdout.strip() == first


def test_memo_makes_a_resent_history_cheap_and_identical(ccr, monkeypatch):
    log, _ = S.klog_with_panic()
    doc = anthropic_doc([("Bash", {"command": "kubectl logs x"}, log)])
    second = copy.deepcopy(doc)
    run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    calls = []
    monkeypatch.setattr(engine, "compress_text", lambda *a, **k: calls.append(1))
    run(second, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert calls == [] and second == doc


def test_every_marker_hash_retrieves_the_original(ccr):
    outputs = []
    for gen in (W.incident_log, W.issue_json, W.db_rows, W.code_search, W.test_output, W.large_diff):
        w = gen()
        outputs.append((w.tool_name, w.tool_args, w.text))
    doc = anthropic_doc(outputs)
    originals = {k: text for k, (_, _, text) in enumerate(outputs)}
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    assert len(report.transforms) == len(outputs)
    for k in originals:
        rendered = doc["messages"][2 + 2 * k]["content"][0]["content"]
        hashes = find_markers(rendered)
        assert hashes
        for h in hashes:
            assert ccr.get("t", h).text == originals[k]
            assert ccr.get("someone-else", h) is None


def test_harder_pass_rerenders_our_renderings_from_their_originals(ccr):
    w = W.incident_log(lines=2000)
    doc = anthropic_doc([("Bash", w.tool_args, w.text)], question=w.query)
    run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr)
    normal = doc["messages"][2]["content"][0]["content"]
    _, report = run(doc, Endpoint.ANTHROPIC_MESSAGES, ccr, config=CompressionConfig(harder=True, budget_ms=None))
    harder = doc["messages"][2]["content"][0]["content"]
    assert len(harder) < len(normal) and report.transforms[0].tokens_before > report.transforms[0].tokens_after
    assert find_markers(harder) == find_markers(normal)
    assert ccr.get("t", find_markers(harder)[0]).text == w.text
    # the same harder rendering straight from the original: one pure function of it
    fresh = anthropic_doc([("Bash", w.tool_args, w.text)], question=w.query)
    engine.MEMO.clear()
    run(fresh, Endpoint.ANTHROPIC_MESSAGES, ccr, config=CompressionConfig(harder=True, budget_ms=None))
    assert fresh["messages"][2]["content"][0]["content"] == harder
