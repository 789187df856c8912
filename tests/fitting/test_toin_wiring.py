"""TOIN wired into the proxy's parts: hints shape new JSON renderings (and only through the
engine's hint provider), retrievals are learned from the CCR entry, /stats shows the patterns."""

from __future__ import annotations

import json

from headroom_core.ccr import CCRStore, marker_hash
from headroom_core.compression.engine import MEMO, CompressionConfig, compress_output
from headroom_core.fitting.toin import Toin, ToinHints, output_signature
from headroom_core.services import Services, toin_section
from headroom_core.settings import Settings
from headroom_core.storage.memory import MemoryStorage

CONFIG = CompressionConfig(min_tokens=200, min_savings=0.05, budget_ms=None)
ZONES = [f"zone-{k}" for k in range(12)]  # more values than the per-value representatives take


def hosts(n: int = 300) -> str:
    """Records whose `zone` is nearly always zone-0: only hints make the rare zones worth keeping."""
    return json.dumps([{"host": f"h{i:04d}", "zone": ZONES[(i // 20) % 12] if i % 20 == 7 else "zone-0",
                        "load": 10 + i % 7, "note": "steady"} for i in range(n)])


def render(text: str, hints=None) -> str:
    MEMO.clear()
    result = compress_output(text, tenant="t", ccr=CCRStore(MemoryStorage()), config=CONFIG,
                             tool_name="list_hosts", hints=hints)
    assert result.text is not None
    return result.text


def test_hinted_fields_keep_items_with_unusual_values():
    text = hosts()
    plain = render(text)
    hinted = render(text, lambda tool, t, digest: ToinHints(("zone",), 0.0))
    rare = [z for z in ZONES[1:] if f'"{z}"' in text]
    assert rare and not all(f'"{z}"' in plain for z in rare)
    assert all(f'"{z}"' in hinted for z in rare), "one item per asked-for value is kept"
    json.loads(hinted)


def test_high_retrieval_rate_keeps_more_items():
    # ten low-cardinality fields whose values first appear at different items: many optional
    # representatives, more than the default share of the array holds
    rows = [{"id": i, **{f"f{k}": (i // (7 + 3 * k)) % 5 for k in range(10)}} for i in range(400)]
    text = json.dumps(rows)
    low = render(text, lambda *a: ToinHints((), 0.0))
    high = render(text, lambda *a: ToinHints((), 1.0))
    assert len(json.loads(high)) > len(json.loads(low))


def test_engine_asks_once_per_output_and_without_provider_renders_as_before():
    text = hosts()
    asked: list[tuple[str, str]] = []

    def provider(tool: str, t: str, digest: str) -> ToinHints:
        asked.append((tool, digest))
        return ToinHints()

    assert render(text, provider) == render(text)  # empty hints change nothing
    assert asked and asked[0][0] == "list_hosts"


def test_hints_are_fixed_per_content_hash_through_toin():
    toin = Toin(MemoryStorage())
    text = hosts()
    sig = output_signature(text)
    first = toin.hints("t", "list_hosts", sig, "h1")
    toin.record_retrieval("t", "list_hosts", sig, query="zone", original=text)
    assert toin.hints("t", "list_hosts", sig, "h1") == first, "an output already rendered keeps its hints"
    assert toin.hints("t", "list_hosts", sig, "h2").fields == ("zone",), "a new output gets them"


def test_retrievals_are_learned_from_the_ccr_entry(tmp_path):
    s = Services(Settings(data_dir=str(tmp_path)))
    s.ccr = CCRStore(MemoryStorage())
    text = hosts()
    digest = marker_hash(s.ccr.put("t", text, kind="json", tool_name="list_hosts"))
    context = marker_hash(s.ccr.put("t", "dropped turns " * 50, kind="context"))
    s.learn_retrieval("t", digest, "zone")
    s.learn_retrieval("t", digest, "")
    s.learn_retrieval("t", context, "")  # no tool: nothing to learn
    s.learn_retrieval("other", digest, "")  # another tenant's hash: not found
    doc = toin_section(s)
    assert doc["scope"] == "tenant" and list(doc["tenants"]) == ["t"]
    (row,) = doc["tenants"]["t"]
    assert (row["tool"], row["retrievals"], row["query_retrievals"]) == ("list_hosts", 2, 1)
    assert row["top_fields"] == ["zone"] and row["signature"] == output_signature(text)
    s.close()


def test_global_scope_section(tmp_path):
    s = Services(Settings(data_dir=str(tmp_path), toin_global=True))
    s.toin_store().record_compression("a", "bash", "text:1", tokens_before=900, tokens_after=100)
    s.toin_store().record_compression("b", "bash", "text:1", tokens_before=500, tokens_after=100)
    doc = toin_section(s)
    assert doc["scope"] == "global"
    assert [(p["tool"], p["compressions"], p["tokens_saved"]) for p in doc["patterns"]] == [("bash", 2, 1200)]
    s.close()
