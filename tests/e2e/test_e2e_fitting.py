"""Context fitting and TOIN end to end, through `headroom proxy` in front of the fake provider.

A long agent conversation over a tiny window (`--model-limits FILE`): the provider receives a
fitted conversation (tool pairs whole, system + first user + last turns intact, one marker
naming headroom_retrieve); the next turn re-applies the same drops byte for byte; the flags pick
the strategy; retrieving the marker's hash gives the provider the dropped text; retrievals and
compressions show up in /stats' TOIN section, and a compressed output whose pattern the model
kept retrieving outlives an equal one when the window forces a drop.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "retrieval"))

from headroom_core.compression.markers import find_markers  # noqa: E402
from headroom_core.tenancy import tenant_of  # noqa: E402
from proxy_runner import ProxyProcess, headroom_proxy, wait_for_addons  # noqa: E402
from retrieval_streams import TOOL, a_retrieve, anthropic_body, chat_body  # noqa: E402

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-fitting"
A, C = "/v1/messages", "/v1/chat/completions"
HEADERS = {A: {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
           C: {"authorization": f"Bearer {KEY}"}}
MODELS = {A: "claude-fit-test", C: "gpt-fit-test"}
WINDOW = 9000
UNITS = 40
SYSTEM = "You are a careful SRE agent. SYSTEM-PROMPT-INTACT"
FIRST = "The deploy is flaky; find out why. FIRST-USER-MESSAGE"


def part(i: int) -> str:
    """A tool output below the compression threshold (fitting, not compression, handles it)."""
    return f"UNIT-{i:03d}\n" + "\n".join(f"line {j} of part {i}: checksum {i * 7919 + j * 104729} ok"
                                          for j in range(28))


def hosts() -> str:
    """A JSON tool output large enough to be compressed (TOIN learns its pattern)."""
    return json.dumps([{"host": f"h{i:04d}", "zone": f"zone-{(i // 20) % 12}" if i % 20 == 7 else "zone-0",
                        "load": 10 + i % 7, "note": "steady"} for i in range(300)])


def anthropic_conversation(first: str, calls: list[tuple], tail, tools: tuple[str, ...]) -> dict:
    """An Anthropic body: `first`, one (id, tool, args, output) call and result per step, then
    the (assistant text, user text) exchanges of `tail`."""
    msgs: list[dict] = [{"role": "user", "content": first}]
    for cid, name, args, out in calls:
        msgs += [{"role": "assistant", "content": [
                     {"type": "text", "text": f"Checking {name}."},
                     {"type": "tool_use", "id": f"toolu_{cid}", "name": name, "input": args}]},
                 {"role": "user", "content": [
                     {"type": "tool_result", "tool_use_id": f"toolu_{cid}", "content": out}]}]
    for said, asked in tail:
        msgs += [{"role": "assistant", "content": said}, {"role": "user", "content": asked}]
    return {"model": MODELS[A], "max_tokens": 256, "system": SYSTEM, "messages": msgs,
            "tools": [{"name": n, "input_schema": {"type": "object"}} for n in tools]}


def conversation(path: str, tail: list[tuple[str, str]] = ()) -> dict:
    """UNITS bash calls with their results, then a big list_hosts call; `tail` adds
    (assistant text, user text) exchanges."""
    calls = [(f"{i:03d}", "bash", {"command": f"cat part-{i}.txt"}, part(i)) for i in range(UNITS)]
    calls.append(("hosts", "list_hosts", {"region": "eu"}, hosts()))
    if path == A:
        return anthropic_conversation(FIRST, calls, tail, ("bash", "list_hosts"))
    msgs = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": FIRST}]
    for cid, name, args, out in calls:
        msgs += [{"role": "assistant", "content": f"Checking {name}.", "tool_calls": [
                     {"id": f"call_{cid}", "type": "function",
                      "function": {"name": name, "arguments": json.dumps(args)}}]},
                 {"role": "tool", "tool_call_id": f"call_{cid}", "content": out}]
    for said, asked in tail:
        msgs += [{"role": "assistant", "content": said}, {"role": "user", "content": asked}]
    return {"model": MODELS[C], "max_tokens": 256, "messages": msgs,
            "tools": [{"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
                      for n in ("bash", "list_hosts")]}


def start(provider, tmp: Path, *flags: str) -> ProxyProcess:
    limits = tmp / "limits.json"
    limits.write_text(json.dumps({"windows": {MODELS[A]: WINDOW, MODELS[C]: WINDOW}}))
    # The default time budget: a request over its window gets fitting's extra allowance even
    # while the embedding model is still loading, so it never goes out unfitted.
    proc = headroom_proxy(provider.url, tmp / "proxy.log", tmp / "data",
                          ["--no-cache",
                           "--model-limits", str(limits), *flags, "--",
                           "--set", f"save_stream_file={tmp / 'flows.mitm'}"])
    wait_for_addons(proc.url)
    return proc


@pytest.fixture(scope="module")
def proxy(provider, tmp_path_factory):
    proc = start(provider, tmp_path_factory.mktemp("fit"))
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy, provider):
    provider.reset()
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=60) as c:
        yield c


def post(client: httpx.Client, path: str, doc: dict) -> httpx.Response:
    r = client.post(path, json=doc, headers=HEADERS[path])
    assert r.status_code == 200, r.text
    return r


def fit_markers(path: str, doc: dict) -> list[str]:
    """Hashes of fitting's marker messages (a compression marker sits inside a tool result)."""
    out = []
    for m in doc["messages"]:
        if m["role"] == "user" and isinstance(m["content"], str) and m["content"].startswith("[headroom:"):
            assert "headroom_retrieve" in m["content"]
            out += find_markers(m["content"])
    return out


def assert_pairs_valid(path: str, msgs: list[dict]) -> None:
    if path == A:
        for k, m in enumerate(msgs):
            uses = [b["id"] for b in m["content"] if b.get("type") == "tool_use"] \
                if m["role"] == "assistant" and isinstance(m["content"], list) else []
            if uses:
                nxt = msgs[k + 1]["content"]
                assert [b["tool_use_id"] for b in nxt if b.get("type") == "tool_result"] == uses
            results = [b["tool_use_id"] for b in m["content"] if b.get("type") == "tool_result"] \
                if m["role"] == "user" and isinstance(m["content"], list) else []
            if results:
                prev = msgs[k - 1]
                assert prev["role"] == "assistant"
                assert [b["id"] for b in prev["content"] if b.get("type") == "tool_use"] == results
        return
    for k, m in enumerate(msgs):
        for j, call in enumerate(m.get("tool_calls") or []):
            assert msgs[k + 1 + j] == {**msgs[k + 1 + j], "role": "tool", "tool_call_id": call["id"]}
        if m["role"] == "tool":
            owner = next(p for p in reversed(msgs[:k]) if p["role"] != "tool")
            assert m["tool_call_id"] in [c["id"] for c in owner.get("tool_calls") or []]


@pytest.mark.parametrize("path", [A, C])
def test_fitted_conversation_then_the_same_drops_next_turn(client, provider, path):
    doc = conversation(path)
    post(client, path, doc)
    sent = json.loads(provider.requests[0].body)
    msgs = sent["messages"]
    assert len(msgs) < len(doc["messages"]), "the conversation was fitted"
    assert_pairs_valid(path, msgs)
    assert len(fit_markers(path, sent)) == 1, "one marker for everything left out"
    assert sent["tools"][-1].get("name", sent["tools"][-1].get("function", {}).get("name")) == TOOL
    if path == A:
        assert sent["system"] == SYSTEM
        assert msgs[0] == {"role": "user", "content": FIRST}
    else:
        assert msgs[:2] == doc["messages"][:2]
    assert msgs[-2] == doc["messages"][-2], "the last turn is intact (its big output compressed)"
    assert "h0299" in json.dumps(msgs[-1]) and "omitted" in json.dumps(msgs[-1])
    dropped = [i for i in range(UNITS) if f"UNIT-{i:03d}" not in provider.requests[0].body.decode()]
    assert dropped, "some units were left out"

    # the next turn: the same drops, byte for byte, and the new exchange after them
    doc2 = conversation(path, [("Looked at the hosts.", "Anything odd?")])
    post(client, path, doc2)
    sent2 = json.loads(provider.requests[1].body)
    first = provider.requests[0].body
    prefix = first[:first.rindex(b"]", 0, first.index(b'"tools"'))]  # up to the end of messages
    assert provider.requests[1].body.startswith(prefix), "the cached prefix stays byte-identical"
    assert sent2["messages"][len(msgs):] == doc2["messages"][-2:]
    assert fit_markers(path, sent2) == fit_markers(path, sent)


def retrieve_reply(path: str, digest: str, query: str | None = None) -> bytes:
    if path == A:
        return json.dumps(anthropic_body([a_retrieve("toolu_r1", digest, query)], "tool_use")).encode()
    args = {"hash": digest} if query is None else {"hash": digest, "query": query}
    return json.dumps(chat_body(None, [("call_r1", TOOL, args)], "tool_calls")).encode()


@pytest.mark.parametrize("path", [A, C])
def test_retrieving_the_marker_returns_the_dropped_text(client, provider, path):
    from fake_provider import Reply

    def handler(rec):
        body = rec.body.decode()
        if "toolu_r1" in body or "call_r1" in body:
            return None  # the continuation: the provider's ordinary answer
        return Reply(body=retrieve_reply(path, fit_markers(path, json.loads(body))[0]))

    provider.handler = handler
    r = post(client, path, conversation(path, [("Looked at the hosts.", "What failed first?")]))
    assert TOOL not in r.text, "the client never sees headroom_retrieve"
    first, cont = (x.body.decode() for x in provider.requests)
    missing = [f"UNIT-{i:03d}" for i in range(UNITS) if f"UNIT-{i:03d}" not in first]
    assert missing
    answer = json.loads(cont)["messages"][-1]
    text = json.dumps(answer)
    assert all(u in text for u in missing), "the dropped units' text came back"


def toin_rows(client: httpx.Client) -> list[dict]:
    section = client.get("/stats").json()["toin"]
    assert section["scope"] == "tenant"
    return section["tenants"].get(tenant_of({"x-api-key": KEY}), [])


def test_stats_show_toin_patterns_and_learn_from_retrievals(client, provider):
    post(client, A, conversation(A))  # compresses the hosts output (possibly again: counted once)
    rows = [r for r in toin_rows(client) if r["tool"] == "list_hosts"]
    assert rows and rows[0]["compressions"] == 1 and rows[0]["tokens_saved"] > 0
    before = rows[0]["retrievals"]
    rendering = json.loads(provider.requests[0].body)["messages"][-1]["content"][0]["content"]
    (digest,) = find_markers(json.loads(rendering)[0])  # the array's summary marker

    from fake_provider import Reply

    provider.reset()
    provider.handler = lambda rec: None if b"toolu_r1" in rec.body else Reply(
        body=retrieve_reply(A, digest, "zone"))
    post(client, A, conversation(A, [("Looked at the hosts.", "Which zones?")]))
    assert len(provider.requests) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # learned in a worker thread after the answer
        rows = [r for r in toin_rows(client) if r["tool"] == "list_hosts"]
        if rows[0]["retrievals"] > before:
            break
        time.sleep(0.1)
    assert rows[0]["retrievals"] == before + 1 and rows[0]["query_retrievals"] >= 1
    assert "zone" in rows[0]["top_fields"]


@pytest.mark.parametrize("flag,strategy", [((), "intelligent"),
                                           (("--no-intelligent-context",), "rolling"),
                                           (("--no-intelligent-scoring",), "position")])
def test_flags_select_the_strategy(provider, tmp_path, flag, strategy):
    from mitmproxy import io

    provider.reset()
    proc = start(provider, tmp_path, *flag)
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=60) as c:
            post(c, A, conversation(A))
    finally:
        proc.stop()
    with open(tmp_path / "flows.mitm", "rb") as f:
        (flow,) = [f for f in io.FlowReader(f).stream() if f.request.path.startswith(A)]
    notes = flow.metadata["headroom"].get("notes", [])
    assert any(n.startswith("fitting:") and n.endswith(f"strategy {strategy}") for n in notes), notes


# --- TOIN's importance reaches scoring for outputs headroom compressed ----------------------

def issue_list(offset: int) -> str:
    return json.dumps([{"id": offset + i, "state": "open" if i % 9 else "closed", "labels": ["bug"],
                        "title": f"ticket {offset + i}"} for i in range(200)])


def build_list(offset: int) -> str:
    return json.dumps([{"build": offset + i, "status": "ok" if i % 9 else "queued", "branch": "main",
                        "runner": f"runner {offset + i}"} for i in range(200)])


def toin_conversation(issues: str, builds: str | None, fillers: int, tail: list[tuple[str, str]]) -> dict:
    """An issue list (the oldest step), a build list of the same size, `fillers` bash steps."""
    calls = [("x", "fetch_issues", {"repo": "web"}, issues)]
    if builds is not None:
        calls.append(("y", "fetch_builds", {"repo": "web"}, builds))
    calls += [(f"{i:03d}", "bash", {"command": f"cat part-{i}.txt"}, part(i)) for i in range(fillers)]
    return anthropic_conversation("Deploys are flaky; find out why.", calls, tail,
                                  ("bash", "fetch_issues", "fetch_builds"))


def sent_result(body: bytes, call_id: str) -> str | None:
    """The tool result the provider received for `call_id` (None: left out)."""
    for m in json.loads(body)["messages"]:
        for block in m["content"] if isinstance(m["content"], list) else ():
            if block.get("type") == "tool_result" and block["tool_use_id"] == call_id:
                return block["content"]
    return None


def test_a_compressed_output_whose_pattern_the_model_retrieves_outlives_an_equal_one(provider, tmp_path):
    """The model keeps coming back for issue lists once compressed. In a later conversation over
    the window, a compressed issue list (older) and a compressed build list of the same size
    compete: the issue list is kept, the build list dropped — scoring sees the renderings, and
    learns their importance from their originals' pattern. TOIN's weight is raised so that the
    factor, not the exact token counts, decides."""
    from fake_provider import Reply

    proc = start(provider, tmp_path, "--scoring-weights",
                 "recency=0.30,semantic=0.25,toin=1.0,error=0.20,reference=0.15")
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=60) as c:
            def retrieve_the_issues(rec):
                if b"toolu_r1" in rec.body:
                    return None  # the continuation: the provider's ordinary answer
                (digest,) = find_markers(sent_result(rec.body, "toolu_x"))
                return Reply(body=retrieve_reply(A, digest, "state closed" if b"1?" in rec.body else None))

            provider.handler = retrieve_the_issues
            for k in range(3):
                post(c, A, toin_conversation(issue_list(5000), None, 0, [("Looked.", f"Again {k}?")]))
            assert len(provider.requests) == 6, "each turn retrieved once and was continued"
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:  # learned in a worker thread after the answer
                rows = {r["tool"]: r for r in toin_rows(c)}
                if rows.get("fetch_issues", {}).get("retrievals") == 3:
                    break
                time.sleep(0.1)
            assert rows["fetch_issues"]["retrievals"] == 3

            provider.reset()
            doc = toin_conversation(issue_list(0), build_list(0), 30, [("Noted.", "What next?")])
            post(c, A, doc)
            body = provider.requests[0].body
            rows = {r["tool"]: r for r in toin_rows(c)}
    finally:
        proc.stop()
    assert len(fit_markers(A, json.loads(body))) == 1, "the window forced drops"
    issues_sent, builds_sent = sent_result(body, "toolu_x"), sent_result(body, "toolu_y")
    assert issues_sent is not None and find_markers(issues_sent), "the compressed issue list is kept"
    assert builds_sent is None, "the equally old, never retrieved build list went first"
    assert rows["fetch_issues"]["compressions"] == 2 and rows["fetch_issues"]["importance"] == 1.0
    assert rows["fetch_builds"]["compressions"] == 1 and rows["fetch_builds"]["importance"] == 0.0
