"""TOIN: structure signatures, learned importance, hints stable per rendering, scopes, stats."""

from __future__ import annotations

import json

import pytest

from headroom_core.fitting.toin import Toin, ToinHints, output_signature, queried_fields
from headroom_core.storage.disk import DiskStorage
from headroom_core.storage.memory import MemoryStorage


def issues(n: int, offset: int = 0) -> str:
    return json.dumps([{"id": offset + i, "state": "open", "labels": ["bug"], "title": f"t{i}"}
                       for i in range(n)])


def log(n: int, seed: int) -> str:
    return "\n".join(f"2024-05-0{seed} 12:00:{i:02d} INFO worker-{seed} handled request id={i * seed}"
                     for i in range(n))


def test_signatures_follow_structure_not_content():
    assert output_signature(issues(3)) == output_signature(issues(40, offset=1000))
    assert output_signature(issues(3)) != output_signature(json.dumps([{"sha": "abc", "author": "x"}]))
    assert output_signature(log(30, 1)) == output_signature(log(50, 7))
    assert output_signature(log(30, 1)) != output_signature("def f():\n    return 1\n" * 10)
    assert output_signature(issues(3)).startswith("json:")
    assert output_signature("{not json").startswith("text:")


def test_queried_fields_prefer_json_keys():
    assert queried_fields("state=closed labels", issues(2)) == ["state", "labels"]
    assert queried_fields("timeout errors in worker") == ["timeout", "errors", "worker"]


def test_importance_grows_with_retrievals():
    toin = Toin(MemoryStorage())
    sig = output_signature(issues(5))
    assert toin.importance("t1", "gh_issues", sig) == 0.0
    for _ in range(4):
        toin.record_compression("t1", "gh_issues", sig, tokens_before=1000, tokens_after=100)
    toin.record_retrieval("t1", "gh_issues", sig)
    low = Toin(toin._storage).importance("t1", "gh_issues", sig)
    for _ in range(3):
        toin.record_retrieval("t1", "gh_issues", sig, query="state")
    high = Toin(toin._storage).importance("t1", "gh_issues", sig)
    assert 0.0 < low < high <= 1.0


def test_hints_never_change_for_a_result_already_rendered():
    """Rule 2: learned hints shape only results never rendered before."""
    toin = Toin(MemoryStorage())
    sig = output_signature(issues(5))
    first = toin.hints("t1", "gh_issues", sig, content_hash="aaa")
    assert first == ToinHints() and first.empty
    for _ in range(3):
        toin.record_compression("t1", "gh_issues", sig)
        toin.record_retrieval("t1", "gh_issues", sig, query="labels state", original=issues(5))
    assert toin.hints("t1", "gh_issues", sig, content_hash="aaa") == first  # replayed as it was
    new = toin.hints("t1", "gh_issues", sig, content_hash="bbb")  # a new result gets the hints
    assert set(new.fields) == {"labels", "state"} and new.retrieval_rate > 0
    assert toin.hints("t1", "gh_issues", sig, content_hash="bbb") == new


def test_tenants_are_separate_unless_global():
    storage = MemoryStorage()
    sig = output_signature(issues(5))
    per_tenant = Toin(storage)
    per_tenant.record_retrieval("t1", "gh_issues", sig, query="state")
    assert per_tenant.importance("t2", "gh_issues", sig) == 0.0
    assert per_tenant.top_patterns("t2") == []
    shared = Toin(storage, global_scope=True)
    shared.record_retrieval("t1", "gh_issues", sig, query="state")
    assert shared.importance("t2", "gh_issues", sig) > 0.0
    # Renderings stay per tenant even when the statistics are shared.
    shared.hints("t1", "gh_issues", sig, content_hash="x")
    assert storage.get("toin:t2", "h:x") is None


def test_top_patterns_for_stats():
    toin = Toin(MemoryStorage())
    for n, tool in enumerate(("gh_issues", "kubectl_logs", "grep")):
        sig = output_signature(issues(3) if tool == "gh_issues" else log(5, 2))
        for _ in range(n + 1):
            toin.record_compression("t1", tool, sig, tokens_before=500, tokens_after=100)
        toin.record_retrieval("t1", tool, sig, query="error id")
    top = toin.top_patterns("t1", 2)
    assert [p.tool_name for p in top] == ["grep", "kubectl_logs"]
    assert top[0].compressions == 3 and top[0].retrievals == 1 and top[0].tokens_saved == 1200
    assert top[0].top_fields == ("error", "id")


def test_persisted_across_processes(tmp_path):
    sig = output_signature(log(10, 3))
    first = DiskStorage(str(tmp_path))
    Toin(first).record_retrieval("t1", "kubectl_logs", sig, query="timeout")
    first.close()
    second = DiskStorage(str(tmp_path))
    assert Toin(second).importance("t1", "kubectl_logs", sig) > 0.0
    second.close()


@pytest.mark.parametrize("text", ["", "   ", "[]", "{}", "\x00\x01", "[" * 5000, "é" * 100])
def test_signature_never_raises(text):
    assert output_signature(text)


def test_a_resent_output_is_counted_once():
    toin = Toin(MemoryStorage())
    sig = output_signature(issues(5))
    for _ in range(5):  # the same output in five requests of one conversation
        toin.record_compression("t1", "gh_issues", sig, tokens_before=900, tokens_after=100,
                                content_hash="h1")
    toin.record_compression("t1", "gh_issues", sig, content_hash="h2")
    [pattern] = toin.top_patterns("t1")
    assert pattern.compressions == 2 and pattern.tokens_saved == 800
