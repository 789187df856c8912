"""Shared by the LLMLingua proxy tests: requests in Anthropic's shape, probes of a running proxy
(its /health, its console output, its process), and the module fixtures they start from."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
for _extra in (ROOT / "tests" / "e2e", ROOT / "scripts"):
    if str(_extra) not in sys.path:
        sys.path.insert(0, str(_extra))

from fake_provider import FakeProvider  # noqa: E402
from headroom_core.tokens import count_text, ensure_tiktoken_cache  # noqa: E402
from proxy_runner import ProxyProcess, clean_env  # noqa: E402

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


def wait_for_output(proxy: ProxyProcess, needle: str, timeout: float = 60, count: int = 1) -> str:
    """The proxy's output once `needle` appears in it `count` times."""
    deadline = time.monotonic() + timeout
    while proxy.output().count(needle) < count:
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


@pytest.fixture(scope="module")
def base_env(tmp_path_factory) -> dict[str, str]:
    """No hub access, and tiktoken's files where the proxy's llmlingua looks for them."""
    cache = ensure_tiktoken_cache(str(tmp_path_factory.mktemp("tiktoken-proxy")))
    return clean_env(HF_HUB_OFFLINE="1", TIKTOKEN_CACHE_DIR=cache)


@pytest.fixture(scope="module")
def env(base_env, ml_installed) -> dict[str, str]:
    """base_env, for tests that need the llmlingua extra (they skip without it)."""
    return base_env


@pytest.fixture(scope="module")
def provider():
    with FakeProvider() as p:
        yield p
