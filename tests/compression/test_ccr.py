"""CCR store: content addressing, tenant isolation, TTL, size cap, BM25 queries."""

from __future__ import annotations

import json

import pytest

from headroom_core.bm25 import rank, tokenize
from headroom_core.ccr import CCRError, CCRStore, content_hash, marker_hash
from headroom_core.storage.base import StorageError
from headroom_core.storage.memory import MemoryStorage


def test_put_returns_sha256_and_get_accepts_marker_prefix_and_full_hash(ccr):
    full = ccr.put("t1", "hello\nworld", kind="text", tool_name="Bash")
    assert full == content_hash("hello\nworld") and len(full) == 64
    for h in (full, marker_hash(full), full[:20], full.upper()):
        entry = ccr.get("t1", h)
        assert entry is not None and entry.text == "hello\nworld"
    assert entry.kind == "text" and entry.tool_name == "Bash" and entry.hash == full


def test_unknown_short_or_mismatching_hashes_return_none(ccr):
    full = ccr.put("t1", "x" * 100, kind="text")
    assert ccr.get("t1", full[:15]) is None  # shorter than a marker hash
    assert ccr.get("t1", "zz" * 10) is None
    wrong = full[:16] + ("0" if full[16] != "0" else "1") + full[17:]
    assert ccr.get("t1", wrong) is None  # same key, different full hash


def test_another_tenant_can_never_read_an_original(ccr):
    full = ccr.put("tenant-a", "secret output", kind="text")
    assert ccr.get("tenant-b", full) is None
    assert ccr.query("tenant-b", full, "secret") is None
    assert ccr.get("tenant-a", full).text == "secret output"


def test_entries_expire_after_ttl():
    now = [1000.0]
    store = CCRStore(MemoryStorage(clock=lambda: now[0]), ttl=60, clock=lambda: now[0])
    full = store.put("t", "data", kind="text")
    now[0] += 59
    assert store.get("t", full) is not None
    now[0] += 2
    assert store.get("t", full) is None


def test_size_cap_refuses_large_originals():
    store = CCRStore(MemoryStorage(), max_entry_bytes=100)
    with pytest.raises(CCRError):
        store.put("t", "x" * 101, kind="text")
    assert store.put("t", "é" * 50, kind="text")  # 100 bytes in UTF-8


def test_backend_failure_is_a_ccr_error():
    class Broken(MemoryStorage):
        def set(self, *a, **k):
            raise StorageError("disk full")

    with pytest.raises(CCRError):
        CCRStore(Broken()).put("t", "x", kind="text")


def test_ensure_skips_rewrites_of_a_recent_put(ccr):
    writes = []
    real_set = ccr.storage.set
    ccr.storage.set = lambda *a, **k: (writes.append(a[1]) if not a[1].endswith(":meta") else None,
                                       real_set(*a, **k))
    for _ in range(3):
        ccr.ensure("t", "same text", kind="text")
    ccr.ensure("u", "same text", kind="text")  # another tenant gets its own copy
    assert len(writes) == 2


def test_query_returns_matching_lines_in_original_order_with_numbers(ccr):
    lines = [f"INFO request {i} ok" for i in range(500)]
    lines[120] = "ERROR payment ORD-4711 declined by issuer"
    lines[400] = "WARN retry for ORD-4711 scheduled"
    full = ccr.put("t", "\n".join(lines), kind="log")
    out = ccr.query("t", full, "ORD-4711 declined", limit=5)
    body = out.splitlines()
    assert body[0].startswith("[headroom: ")
    assert body[1] == "L121: ERROR payment ORD-4711 declined by issuer"
    assert body[2] == "L401: WARN retry for ORD-4711 scheduled"
    assert "no lines" in ccr.query("t", full, "kubernetes")


def test_query_ranks_json_items(ccr):
    items = [{"id": i, "title": f"issue number {i}", "state": "open"} for i in range(200)]
    items[77]["title"] = "websocket reconnect drops messages"
    full = ccr.put("t", json.dumps({"items": items}), kind="json")
    out = ccr.query("t", full, "websocket reconnect", limit=3).splitlines()
    assert out[1].startswith("[77] ") and json.loads(out[1][5:])["id"] == 77


def test_bm25_prefers_rare_terms_and_breaks_ties_by_position():
    docs = ["alpha beta", "alpha", "gamma alpha", "alpha beta"]
    ranked = rank(docs, "beta")
    assert [i for i, _ in ranked] == [0, 3]
    assert rank(docs, "") == [] and rank([], "x") == []
    assert "retry_budget" in tokenize("retry_budget=3") and "budget" in tokenize("retry_budget=3")


def test_disk_backend_keeps_large_originals_across_reopening(tmp_path):
    from headroom_core.storage.disk import DiskStorage

    text = "\n".join(f"2025-03-14 INFO line {i} é" for i in range(50000))
    store = CCRStore(DiskStorage(tmp_path / "ccr"))
    full = store.put("t", text, kind="log", tool_name="Bash")
    store.storage.close()
    reopened = CCRStore(DiskStorage(tmp_path / "ccr"))  # a restarted process
    entry = reopened.get("t", marker_hash(full))
    assert entry.text == text and entry.tool_name == "Bash"
    assert "L50000:" in reopened.query("t", full, "line 49999")
    reopened.storage.close()
