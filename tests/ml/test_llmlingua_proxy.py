"""LLMLingua-2 end to end (issue 8): `headroom proxy` and `mitmdump -s addons/headroom.py` with
the tiny local model, in front of the fake provider.

What a user sees and what reaches the provider: the start-up lines in the issue's words; requests
that pass untouched while the model loads; prose tool results that arrive shrunk at about the
rate asked for, with the standard marker whose original the proxy hands back through
headroom_retrieve; JSON and logs left to their own compressors; a proxy that keeps answering
while a large compression runs; a missing package, a broken one or a bad model path reported
and survived; and no torch in a proxy that was not asked for LLMLingua.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
for _extra in (ROOT / "tests" / "e2e", ROOT / "scripts"):
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

import workloads as W  # noqa: E402
from fake_provider import FakeProvider, Reply  # noqa: E402
from headroom_core.ccr import CCRStore  # noqa: E402
from headroom_core.compression.markers import find_markers  # noqa: E402
from headroom_core.storage.disk import DiskStorage  # noqa: E402
from headroom_core.tenancy import tenant_of  # noqa: E402
from headroom_core.tokens import count_text, ensure_tiktoken_cache  # noqa: E402
from proxy_runner import ProxyProcess, clean_env, headroom_proxy, mitmdump  # noqa: E402

# Two proxies load a model at once in the first test's setup: slow on a busy 2-core machine.
pytestmark = [pytest.mark.ml, pytest.mark.e2e, pytest.mark.timeout(300)]

KEY = "sk-llmlingua-e2e"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01",
           "content-type": "application/json"}
MODEL = "claude-sonnet-4-5"
LINGUA = "LLMLingua-2 kept"  # how the prose pass's marker summary begins
MISSING = ("WARNING: LLMLingua requested but not installed. "
           "Install with: pip install 'headroom-proxy[llmlingua]'")
AVAILABLE = "LLMLingua: available (enable with --llmlingua for ML compression)"
RETRIEVE = "headroom_retrieve"
BUDGET_MS = "30000"  # room for the large compression; the model's own share is 60 % of it


# --- requests ---------------------------------------------------------------------------------

def conversation(outputs: list[tuple[str, str]], question: str = "What do these notes say?") -> dict:
    """An Anthropic request whose last turn calls one tool per (tool, text) and gets its text.

    All in one turn: the prose pass compresses only what is new since the model's last turn
    (renderings of older turns must stay as the provider cached them).
    """
    messages: list[dict] = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": f"toolu_{k}", "name": tool, "input": {}}
            for k, (tool, _) in enumerate(outputs)]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": f"toolu_{k}", "content": text}
            for k, (_, text) in enumerate(outputs)]}]
    return {"model": MODEL, "max_tokens": 256, "messages": messages,
            "tools": [{"name": t, "input_schema": {"type": "object"}}
                      for t in sorted({t for t, _ in outputs})]}


def small_request(n: int) -> dict:
    return {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": f"hi {n}"}]}


def post(proxy: ProxyProcess, doc: dict, timeout: float = 60) -> tuple[bytes, httpx.Response]:
    body = json.dumps(doc).encode()
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=timeout) as client:
        resp = client.post("/v1/messages", content=body, headers=HEADERS)
    assert resp.status_code == 200, resp.text
    return body, resp


def tool_results(body: bytes) -> list[str]:
    doc = json.loads(body)
    return [b["content"] for m in doc["messages"] if isinstance(m["content"], list)
            for b in m["content"] if b.get("type") == "tool_result"]


def kept_share(rendering: str, original: str) -> float:
    """Tokens of the rendering before its marker, over the original's."""
    body = rendering.rsplit("\n[headroom: ", 1)[0]
    return count_text(body, MODEL) / count_text(original, MODEL)


def health(proxy: ProxyProcess) -> dict:
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=10) as client:
        return client.get("/health").json()


def lingua_state(proxy: ProxyProcess) -> str:
    return health(proxy)["features"]["llmlingua"]


def wait_for_output(proxy: ProxyProcess, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while needle not in proxy.output():
        assert time.monotonic() < deadline, f"{needle!r} not printed:\n{proxy.output()}"
        assert proxy.proc.poll() is None, proxy.output()
        time.sleep(0.1)
    return proxy.output()


def maps(proxy: ProxyProcess) -> str:
    return Path(f"/proc/{proxy.proc.pid}/maps").read_text()


def rss_mb(proxy: ProxyProcess) -> float:
    for line in Path(f"/proc/{proxy.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


# --- fixtures ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def env(tmp_path_factory, ml_installed) -> dict[str, str]:
    """No hub access, and tiktoken's files where the proxy's llmlingua looks for them."""
    cache = ensure_tiktoken_cache(str(tmp_path_factory.mktemp("tiktoken-proxy")))
    return clean_env(HF_HUB_OFFLINE="1", TIKTOKEN_CACHE_DIR=cache)


@pytest.fixture(scope="module")
def provider():
    with FakeProvider() as p:
        yield p


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
    original = make_prose(16, seed=int(lingua.rate * 100))
    post(lingua.proc, conversation([("fetch_notes", original)]))
    received = fresh.requests[-1]
    rendering = tool_results(received.body)[0]
    assert LINGUA in rendering, rendering[-300:]
    assert abs(kept_share(rendering, original) - lingua.rate) < 0.12
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
    _, resp = post(lingua.proc, conversation([("fetch_notes", original)]))
    assert resp.json()["content"] == [{"type": "text", "text": "done"}]
    assert len(fresh.requests) == 2
    continuation = json.loads(fresh.requests[1].body)
    answers = [b for m in continuation["messages"] if isinstance(m["content"], list)
               for b in m["content"] if b.get("tool_use_id") == "toolu_r"]
    assert [a["content"] for a in answers] == [original]


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


# --- LLMLingua off, missing, broken, misconfigured ---------------------------------------------

HIDE_LLMLINGUA = '''
import importlib.abc, sys

class _NoLLMLingua(importlib.abc.MetaPathFinder):
    """As if the llmlingua package were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name == "llmlingua" or name.startswith("llmlingua."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoLLMLingua())
'''


def _start_plain(provider, env, tmp: Path, args: list[str], runner: str = "headroom",
                 **extra_env: str) -> ProxyProcess:
    env = {**env, **extra_env}
    if runner == "headroom":
        return headroom_proxy(provider.url, tmp / "proxy.log", tmp / "data", args, env=env)
    sets = {"headroom_data_dir": str(tmp / "data")}
    for flag in args:  # only --llmlingua here
        sets["headroom_" + flag.lstrip("-").replace("-", "_")] = "true"
    return mitmdump(provider.url, tmp / "proxy.log", tmp / "confdir", sets=sets, env=env)


def _forwards_untouched(proxy: ProxyProcess, provider: FakeProvider, text: str) -> None:
    provider.reset()
    post(proxy, conversation([("fetch_notes", text)]))
    assert tool_results(provider.requests[-1].body) == [text]


@pytest.mark.parametrize("runner", ["headroom", "mitmdump"])
def test_missing_package_warns_and_the_proxy_forwards(runner, provider, env, tmp_path, make_prose):
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(HIDE_LLMLINGUA)
    proxy = _start_plain(provider, env, tmp_path, ["--llmlingua"], runner, PYTHONPATH=str(hide))
    try:
        out = wait_for_output(proxy, MISSING)
        # headroom proxy: in its banner, then from the addon; plain mitmdump: from the addon
        assert out.count(MISSING) == (2 if runner == "headroom" else 1), out
        assert lingua_state(proxy) == "not installed"
        _forwards_untouched(proxy, provider, make_prose(14, seed=501))
        assert "torch" not in maps(proxy)
    finally:
        proxy.stop()


def test_broken_package_is_reported_and_the_proxy_forwards(provider, env, tmp_path, make_prose,
                                                           tiny_model_dir):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "llmlingua.py").write_text('raise ImportError("llmlingua is broken here")\n')
    proxy = _start_plain(provider, env, tmp_path, ["--llmlingua", "--llmlingua-model",
                                                   str(tiny_model_dir)], PYTHONPATH=str(broken))
    try:
        out = wait_for_output(proxy, "LLMLingua: model failed to load")
        assert ("llmlingua could not be imported (llmlingua is broken here); "
                "pip install 'headroom-proxy[llmlingua]'") in out
        assert lingua_state(proxy).startswith("failed (ModuleNotFoundError: llmlingua could not")
        _forwards_untouched(proxy, provider, make_prose(14, seed=502))
    finally:
        proxy.stop()


def test_bad_model_path_is_reported_and_the_proxy_forwards(provider, env, tmp_path, make_prose):
    bad = tmp_path / "no-such-dir" / "bert-base-multilingual-cased"
    proxy = _start_plain(provider, env, tmp_path, ["--llmlingua", "--llmlingua-model", str(bad)])
    try:
        out = wait_for_output(proxy, "LLMLingua: model failed to load")
        assert (f"LLMLingua: model failed to load (FileNotFoundError: model directory not found: "
                f"{bad}); requests pass without it") in out
        assert lingua_state(proxy) == f"failed (FileNotFoundError: model directory not found: {bad})"
        _forwards_untouched(proxy, provider, make_prose(14, seed=503))
    finally:
        proxy.stop()


def test_off_says_available_and_never_imports_torch(provider, env, tmp_path, make_prose):
    if importlib.util.find_spec("llmlingua") is None:
        pytest.skip("llmlingua is not installed")
    proxy = _start_plain(provider, env, tmp_path, [])
    try:
        assert AVAILABLE in proxy.output()
        assert lingua_state(proxy) == "off"
        _forwards_untouched(proxy, provider, make_prose(14, seed=504))  # through the optimiser
        assert "torch" not in maps(proxy)  # no torch library mapped: never imported
        # headroom on mitmproxy is ~155 MB here; importing torch alone adds ~210 MB
        assert rss_mb(proxy) < 300
    finally:
        proxy.stop()
