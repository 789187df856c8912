"""LLMLingua-2 end to end (issue 8), switched on: `headroom proxy` (rate 0.3) and
`mitmdump -s addons/headroom.py` (rate 0.6) on the tiny local model, in front of the fake provider.

Requests pass untouched while the model loads; then prose tool results arrive shrunk at about
the rate asked for, identifiers and query terms kept, with the standard marker whose original
the proxy hands back through headroom_retrieve; JSON and logs are left to their own compressors;
the proxy keeps answering while a large compression runs.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

# lingua_proxy first: it puts tests/e2e and scripts on sys.path for the imports below
from lingua_proxy import (BUDGET_MS, KEY, LINGUA, MODEL, RETRIEVE, base_env, conversation,  # noqa: F401
                          env, kept_share, lingua_state, maps, post, provider, small_request,
                          tool_results)

import workloads as W
from fake_provider import FakeProvider, Reply
from headroom_core.ccr import CCRStore
from headroom_core.compression.markers import find_markers
from headroom_core.storage.disk import DiskStorage
from headroom_core.tenancy import tenant_of
from proxy_runner import ProxyProcess, headroom_proxy, mitmdump

# Two proxies load a model at once in the first test's setup: slow on a busy 2-core machine.
pytestmark = [pytest.mark.ml, pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def fresh(provider):
    provider.reset()
    return provider


@dataclass
class Lingua:
    """A proxy started with LLMLingua on, and what one request sent at once (model loading) did."""

    proc: ProxyProcess
    rate: float
    data_dir: Path
    early_state_before: str = ""
    early_state_after: str = ""
    early_text: str = ""
    early_received: str = ""

    def store(self) -> CCRStore:
        return CCRStore(DiskStorage(self.data_dir / "ccr"))


def _send_early(lingua: Lingua, provider: FakeProvider, text: str) -> None:
    lingua.early_state_before = lingua_state(lingua.proc)
    provider.reset()
    post(lingua.proc, conversation([("fetch_notes", text)]))
    lingua.early_received = tool_results(provider.requests[-1].body)[0]
    lingua.early_state_after = lingua_state(lingua.proc)
    lingua.early_text = text


def _wait_ready(lingua: Lingua, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while True:
        state = lingua_state(lingua.proc)
        if state.startswith("on (ready"):
            return
        assert not state.startswith("failed"), f"{state}\n{lingua.proc.output()}"
        assert time.monotonic() < deadline, f"model not ready: {state}\n{lingua.proc.output()}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def lingua_pair(provider, env, tiny_model_dir, tmp_path_factory, make_prose):
    """`headroom proxy` at rate 0.3 and `mitmdump -s` at rate 0.6, both on the tiny model.

    Each gets one prose request the moment it listens (its model is still loading then); the
    fixture then waits until both models are ready.
    """
    model = str(tiny_model_dir)
    tmp = tmp_path_factory.mktemp("lingua-headroom")
    hp = Lingua(headroom_proxy(provider.url, tmp / "proxy.log", tmp / "data", [
        "--llmlingua", "--llmlingua-model", model, "--llmlingua-rate", "0.3",
        "--compression-budget-ms", BUDGET_MS], env=env), 0.3, tmp / "data")
    started: list[Lingua] = [hp]
    try:
        _send_early(hp, provider, make_prose(14, seed=101))
        tmp = tmp_path_factory.mktemp("lingua-mitmdump")
        md = Lingua(mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir", sets={
            "headroom_data_dir": str(tmp / "data"), "headroom_llmlingua": "true",
            "headroom_llmlingua_model": model, "headroom_llmlingua_rate": "0.6",
            "headroom_compression_budget_ms": BUDGET_MS}, env=env), 0.6, tmp / "data")
        started.append(md)
        _send_early(md, provider, make_prose(14, seed=102))
        for lingua in started:
            _wait_ready(lingua)
        yield {"headroom": hp, "mitmdump": md}
    finally:
        for lingua in started:
            lingua.proc.stop()


@pytest.fixture(params=["headroom", "mitmdump"])
def lingua(request, lingua_pair) -> Lingua:
    return lingua_pair[request.param]


# --- LLMLingua on -----------------------------------------------------------------------------

def test_banner_and_progress_lines(lingua_pair):
    from headroom_core.ml.llmlingua import resolve_device

    device = resolve_device("auto")  # cpu here; cuda where torch sees a GPU
    out = lingua_pair["headroom"].proc.output()
    assert f"LLMLingua: ENABLED (device={device}, rate=0.3)" in out
    for lingua in lingua_pair.values():
        out = lingua.proc.output()
        assert "LLMLingua: loading " in out and f"LLMLingua: model ready on {device}" in out
        assert lingua_state(lingua.proc) == f"on (ready, {device}, rate {lingua.rate})"


def test_requests_before_the_model_is_ready_pass_without_it(lingua):
    assert lingua.early_state_before.startswith("on (loading")
    assert lingua.early_state_after.startswith("on (loading")  # answered while still loading
    assert lingua.early_received == lingua.early_text  # not touched by LLMLingua (nor another)


def test_prose_arrives_shrunk_at_the_rate_and_the_original_comes_back(lingua, fresh, make_prose):
    original = make_prose(16, seed=int(lingua.rate * 100)) + "\n\n" + FACTS
    question = "Why does the settlement stall?"
    post(lingua.proc, conversation([("fetch_notes", original)], question))
    received = fresh.requests[-1]
    rendering = tool_results(received.body)[0]
    assert LINGUA in rendering, rendering[-300:]
    assert abs(kept_share(rendering, original) - lingua.rate) < 0.12
    for needle in FACT_NEEDLES + ("settlement",):  # identifiers, paths, numbers, query terms
        assert needle in rendering, needle
    assert RETRIEVE in [t["name"] for t in json.loads(received.body)["tools"]]
    [digest] = find_markers(rendering)
    store = lingua.store()  # the proxy's own store, under its data directory
    try:
        assert store.get(tenant_of({"x-api-key": KEY}), digest).text == original
    finally:
        store.storage.close()

    # The model asks for the original: headroom answers it and continues the turn itself.
    fresh.reset()
    fresh.script(Reply(body=json.dumps(_anthropic_reply([
        {"type": "tool_use", "id": "toolu_r", "name": RETRIEVE, "input": {"hash": digest}}],
        "tool_use")).encode()),
        Reply(body=json.dumps(_anthropic_reply([{"type": "text", "text": "done"}],
                                               "end_turn")).encode()))
    _, resp = post(lingua.proc, conversation([("fetch_notes", original)], question))
    assert resp.json()["content"] == [{"type": "text", "text": "done"}]
    assert len(fresh.requests) == 2
    continuation = json.loads(fresh.requests[1].body)
    answers = [b for m in continuation["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("tool_use_id") == "toolu_r"]
    assert [a["content"] for a in answers] == [original]


FACTS = ("Notes from the call: the settlement job reads /etc/headroom/settle.yaml, ticket "
         "OPS-4821 tracks it, and retry_budget was raised to 37 after the outage.")
FACT_NEEDLES = ("/etc/headroom/settle.yaml", "OPS-4821", "retry_budget", "37")


def _anthropic_reply(blocks: list[dict], stop: str) -> dict:
    return {"id": "msg_lingua", "type": "message", "role": "assistant", "model": MODEL,
            "content": blocks, "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 100, "output_tokens": 10,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def test_json_and_logs_are_left_to_their_own_compressors(lingua, fresh, make_prose):
    prose = make_prose(12, seed=int(lingua.rate * 100) + 7)
    log_out = W.incident_log(seed=51, lines=600)
    json_out = W.issue_json(seed=52, n=50)
    post(lingua.proc, conversation([("fetch_notes", prose), (log_out.tool_name, log_out.text),
                                    (json_out.tool_name, json_out.text)]))
    got_prose, got_log, got_json = tool_results(fresh.requests[-1].body)
    assert LINGUA in got_prose
    for got, original in ((got_log, log_out.text), (got_json, json_out.text)):
        assert LINGUA not in got
        assert find_markers(got) and len(got) < len(original)  # compressed, by its own kind
    json.loads(got_json)  # JSON in, JSON out: no word dropped inside it


def test_two_rates_keep_different_shares(lingua_pair, fresh, make_prose):
    original = make_prose(16, seed=303)
    shares = {}
    for name, lingua in lingua_pair.items():
        fresh.reset()
        post(lingua.proc, conversation([("fetch_notes", original)]))
        rendering = tool_results(fresh.requests[-1].body)[0]
        assert LINGUA in rendering
        shares[lingua.rate] = kept_share(rendering, original)
    assert shares[0.3] + 0.15 < shares[0.6], shares


def test_the_loop_keeps_serving_while_a_large_compression_runs(lingua_pair, fresh, make_prose):
    """Small requests, and mid-sized ones that the optimiser compresses (a log), are answered
    while the model works on a large request in the same process."""
    proxy = lingua_pair["headroom"].proc
    # two documents just under the service's size bound: seconds of model work on a CPU
    large = conversation([(f"fetch_doc_{k}", make_prose(88, seed=400 + k)) for k in range(2)],
                         question="large")
    log_out = W.incident_log(seed=61, lines=300)
    finished: list[float] = []

    def send_large() -> None:
        post(proxy, large, timeout=120)
        finished.append(time.monotonic())

    thread = threading.Thread(target=send_large)
    thread.start()
    done: list[tuple[str, float]] = []
    try:
        n = 0
        while thread.is_alive() and n < 200:
            if n % 3 == 2:
                post(proxy, conversation([(log_out.tool_name, log_out.text)], f"medium {n}"))
                done.append(("medium", time.monotonic()))
            else:
                post(proxy, small_request(n), timeout=30)
                done.append(("small", time.monotonic()))
            n += 1
            time.sleep(0.05)
    finally:
        thread.join(120)
    assert finished, "the large request did not complete"
    during = [kind for kind, t in done if t < finished[0]]
    assert during.count("small") >= 3 and during.count("medium") >= 1, (during, len(done))
    received = {json.loads(r.body)["messages"][0]["content"]: r.body for r in fresh.requests}
    order = list(received)
    assert order.index("large") >= 3  # others reached the provider before the large one
    assert any(LINGUA in r for r in tool_results(received["large"]))  # the model really ran
    for question, body in received.items():
        if question.startswith("medium"):
            [rendering] = tool_results(body)
            assert find_markers(rendering) and LINGUA not in rendering  # the log compressor's


def test_torch_is_loaded_where_llmlingua_is_on(lingua_pair):
    """The positive control of the check below: the same probe sees torch when it is there."""
    assert "torch" in maps(lingua_pair["headroom"].proc)
