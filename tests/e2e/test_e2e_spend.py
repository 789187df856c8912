"""Rate limits and budgets through a real proxy: refusals are HTTP 429 with `retry-after` in the
error envelope of the provider the client speaks to; budgets are charged from the provider's
usage, streamed or not, and survive a restart; /stats and /health show spend, remaining and the
next reset; /metrics counts the refusals."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Iterator

import httpx
import pytest

from fake_provider import (Recorded, Reply, anthropic_events, anthropic_message, openai_chat,
                           openai_chat_events, openai_response)
from headroom_core.tenancy import tenant_of
from proxy_runner import ProxyProcess, clean_env, headroom_proxy, mitmdump

pytestmark = pytest.mark.e2e

PATHS = {"anthropic": "/v1/messages", "chat": "/v1/chat/completions", "responses": "/v1/responses"}
# Input per million tokens: claude-sonnet-4-5 $3, gpt-4o $2.50 (the bundled pricing file).
INPUT_TOKENS = 2400
COSTS = {"anthropic": 0.0072, "chat": 0.006, "responses": 0.006}
BUDGET = "0.01"  # one request leaves some budget; the second passes the limit; the third is refused


def new_key(kind: str) -> dict[str, str]:
    """A fresh tenant per test: limits and budgets are per API key."""
    if kind == "anthropic":
        return {"x-api-key": f"sk-ant-api03-{uuid.uuid4().hex}{uuid.uuid4().hex}"}
    return {"authorization": f"Bearer sk-proj-{uuid.uuid4().hex}{uuid.uuid4().hex}"}


def body(kind: str, text: str = "hello", stream: bool = False) -> dict:
    if kind == "anthropic":
        doc = {"model": "claude-sonnet-4-5", "max_tokens": 16,
               "messages": [{"role": "user", "content": text}]}
    elif kind == "chat":
        doc = {"model": "gpt-4o", "max_tokens": 16, "messages": [{"role": "user", "content": text}]}
        if stream:
            doc["stream_options"] = {"include_usage": True}
    else:
        doc = {"model": "gpt-4o", "max_output_tokens": 16, "input": text}
    if stream:
        doc["stream"] = True
    return doc


def priced_reply(rec: Recorded) -> Reply:
    """Every answer reports INPUT_TOKENS of input (and no output), streamed or not."""
    doc = json.loads(rec.body or b"{}")
    stream = bool(doc.get("stream"))
    if rec.target.endswith("/v1/messages"):
        if stream:
            return Reply(events=anthropic_events(input_tokens=INPUT_TOKENS, output_tokens=0))
        return Reply(body=json.dumps(anthropic_message(input_tokens=INPUT_TOKENS,
                                                       output_tokens=0)).encode())
    if rec.target.endswith("/v1/chat/completions"):
        if stream:
            return Reply(events=openai_chat_events(prompt_tokens=INPUT_TOKENS, completion_tokens=0))
        return Reply(body=json.dumps(openai_chat(prompt_tokens=INPUT_TOKENS,
                                                 completion_tokens=0)).encode())
    return Reply(body=json.dumps(openai_response(input_tokens=INPUT_TOKENS,
                                                 output_tokens=0)).encode())


def assert_refusal(resp: httpx.Response, kind: str, status: int, error_type: str) -> str:
    """The provider's envelope, status and retry-after; returns the message."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert int(resp.headers["retry-after"]) >= 1
    doc = resp.json()
    if kind == "anthropic":
        assert set(doc) == {"type", "error"} and doc["type"] == "error"
    else:
        assert set(doc) == {"error"}
        assert doc["error"]["code"] == error_type and "param" in doc["error"]
    assert doc["error"]["type"] == error_type
    assert isinstance(doc["error"]["message"], str) and doc["error"]["message"]
    return doc["error"]["message"]


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


# --- rate limits ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def limited(provider, tmp_path_factory, confdir) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("limits")
    proc = mitmdump(provider.url, tmp / "proxy.log", confdir,
                    sets={"headroom_rpm": "2", "headroom_tpm": "1000"})
    yield proc
    proc.stop()


@pytest.fixture
def lclient(limited) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=limited.url, trust_env=False, timeout=30) as c:
        yield c


@pytest.mark.parametrize("kind,error_type", [("anthropic", "rate_limit_error"),
                                             ("chat", "rate_limit_exceeded"),
                                             ("responses", "rate_limit_exceeded")])
def test_rpm_refuses_the_third_request_in_the_window(lclient, provider, kind, error_type):
    key = new_key(kind)
    ok = [lclient.post(PATHS[kind], json=body(kind), headers=key) for _ in range(2)]
    assert [r.status_code for r in ok] == [200, 200]
    third = lclient.post(PATHS[kind], json=body(kind), headers=key)
    message = assert_refusal(third, kind, 429, error_type)
    assert "2 requests per minute" in message
    assert int(third.headers["retry-after"]) <= 30  # one request refills in 60 / 2 s
    assert len(provider.requests) == 2  # the refused request never reached the provider
    # Another key has its own allowance.
    assert lclient.post(PATHS[kind], json=body(kind), headers=new_key(kind)).status_code == 200
    stats = lclient.get("/stats").json()
    assert stats["rate_limit"]["rpm"] == 2 and stats["rate_limit"]["refused"]["rpm"] >= 1
    assert stats["refused"]["rate_limit"] >= 1
    health = lclient.get("/health").json()
    assert health["stats"]["refused"]["rate_limit"] >= 1
    text = lclient.get("/metrics").text
    assert metric(text, "headroom_rate_limit_refusals_total", status="429") >= 1


def test_tpm_refuses_a_big_request_then_admits_it_after_retry_after(lclient, provider):
    import time

    key = new_key("anthropic")
    small = lclient.post(PATHS["anthropic"], json=body("anthropic"), headers=key)
    assert small.status_code == 200  # ~10 tokens of the 1,000 per minute, reconciled to 25 used
    lclient.get("/stats")  # waits until it is accounted: the reconciliation is done
    big = body("anthropic", "word " * 3000)  # ~3,000 tokens: more than the bucket holds now
    refused = lclient.post(PATHS["anthropic"], json=big, headers=key)
    message = assert_refusal(refused, "anthropic", 429, "rate_limit_error")
    assert "1000 input tokens per minute" in message
    assert len(provider.requests) == 1
    # A request larger than the whole allowance waits for a full bucket, then passes.
    time.sleep(int(refused.headers["retry-after"]) + 0.2)
    again = lclient.post(PATHS["anthropic"], json=big, headers=key)
    assert again.status_code == 200, again.text
    assert len(provider.requests) == 2


# --- budgets ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def budgeted(provider, tmp_path_factory, confdir) -> Iterator[ProxyProcess]:
    tmp = tmp_path_factory.mktemp("budget")
    proc = mitmdump(provider.url, tmp / "proxy.log", confdir,
                    sets={"headroom_budget": BUDGET, "headroom_budget_period": "daily"})
    yield proc
    proc.stop()


@pytest.fixture
def bclient(budgeted, provider) -> Iterator[httpx.Client]:
    provider.handler = priced_reply
    with httpx.Client(base_url=budgeted.url, trust_env=False, timeout=30) as c:
        yield c


def spend_until_refused(client: httpx.Client, kind: str, key: dict, stream: bool) -> httpx.Response:
    for i in range(2):
        resp = client.post(PATHS[kind], json=body(kind, f"q{i}", stream), headers=key)
        assert resp.status_code == 200, resp.text
        if stream:
            assert resp.headers["content-type"].startswith("text/event-stream")
        client.get("/stats")  # waits until the request is accounted (its spend settled)
    return client.post(PATHS[kind], json=body(kind, "q2", stream), headers=key)


@pytest.mark.parametrize("stream", [False, True], ids=["buffered", "streamed"])
@pytest.mark.parametrize("kind", list(PATHS))
def test_budget_refuses_once_spent(bclient, provider, kind, stream):
    if kind == "responses" and stream:
        pytest.skip("covered by the other streamed formats")
    key = new_key(kind)
    refused = spend_until_refused(bclient, kind, key, stream)
    message = assert_refusal(refused, kind, 429, "budget_exceeded")
    assert "daily budget of $0.01" in message and f"${2 * COSTS[kind]:.4f} spent" in message
    assert len(provider.requests) == 2
    tenant = tenant_of(key)
    doc = bclient.get("/stats").json()["budget"]
    assert doc["period"] == "daily" and doc["scope"] == "tenant" and doc["limit_usd"] == 0.01
    assert doc["tenants"][tenant]["spend_usd"] == pytest.approx(2 * COSTS[kind])
    assert doc["tenants"][tenant]["remaining_usd"] == 0
    assert doc["refused"]["budget_exceeded"] >= 1
    tomorrow = datetime.now(timezone.utc).date().toordinal() + 1
    reset = datetime.strptime(doc["resets_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert reset.date().toordinal() == tomorrow and (reset.hour, reset.minute) == (0, 0)
    # Seconds until the reset, within a minute of what the clock says.
    left = reset.replace(tzinfo=timezone.utc).timestamp() - datetime.now(timezone.utc).timestamp()
    assert abs(int(refused.headers["retry-after"]) - left) < 60


def test_budget_in_health_and_metrics(bclient):
    key = new_key("chat")
    spend_until_refused(bclient, "chat", key, stream=False)
    health = bclient.get("/health").json()["stats"]
    assert health["budget"]["limit_usd"] == 0.01 and health["budget"]["tenants_seen"] >= 1
    assert "resets_at" in health["budget"] and health["refused"]["budget"] >= 1
    assert "tenants" not in health["budget"]  # /health stays short; /stats lists tenants
    text = bclient.get("/metrics").text
    assert metric(text, "headroom_budget_refusals_total", provider="openai", status="429") >= 1
    assert metric(text, "headroom_cost_usd_total", provider="openai") >= 2 * COSTS["chat"] - 1e-9
    assert metric(text, "headroom_budget_limit_usd") == pytest.approx(0.01)
    assert metric(text, "headroom_budget_remaining_usd", scope="tenant_min") == 0
    # Every forwarded request's ratio (1.0: nothing to compress in these small requests).
    assert metric(text, "headroom_compression_ratio_count", provider="openai") >= 2
    assert metric(text, "headroom_compression_ratio_bucket", provider="openai", le="1.0") >= 2


def test_global_budget_spans_tenants_and_shows_in_stats(provider, tmp_path):
    provider.handler = priced_reply
    proc = headroom_proxy(provider.url, tmp_path / "log", tmp_path / "data",
                          ["--budget", BUDGET, "--budget-scope", "global"])
    try:
        with httpx.Client(base_url=proc.url, trust_env=False, timeout=30) as c:
            for kind in ("anthropic", "chat"):  # two providers, two keys, one budget
                assert c.post(PATHS[kind], json=body(kind), headers=new_key(kind)).status_code == 200
                c.get("/stats")
            refused = c.post(PATHS["responses"], json=body("responses"), headers=new_key("responses"))
            message = assert_refusal(refused, "responses", 429, "budget_exceeded")
            assert "global" in message
            doc = c.get("/stats").json()["budget"]
            health = c.get("/health").json()["stats"]["budget"]
        assert doc["global"]["spend_usd"] == pytest.approx(COSTS["anthropic"] + COSTS["chat"])
        assert doc["global"]["remaining_usd"] == 0 and "tenants" not in doc
        assert health["global"] == doc["global"]
        metrics = httpx.get(proc.url + "/metrics", trust_env=False).text
        assert metric(metrics, "headroom_budget_remaining_usd", scope="global") == 0
    finally:
        proc.stop()


@pytest.mark.parametrize("backend", ["disk", "redis"])
def test_spend_survives_a_restart(provider, tmp_path, request, backend):
    provider.handler = priced_reply
    args = ["--budget", BUDGET, "--budget-period", "monthly"]
    if backend == "redis":
        args += ["--redis-url", request.getfixturevalue("redis_server").url]
    key = new_key("anthropic")
    first = headroom_proxy(provider.url, tmp_path / "log1", tmp_path / "data", args)
    try:
        with httpx.Client(base_url=first.url, trust_env=False, timeout=30) as c:
            assert c.post(PATHS["anthropic"], json=body("anthropic"), headers=key).status_code == 200
            assert c.get("/stats").json()["budget"]["tenants"][tenant_of(key)]["spend_usd"] == \
                pytest.approx(COSTS["anthropic"])
    finally:
        first.stop()
    # Redis keeps the state for the second process: give it an empty data directory.
    data = tmp_path / ("data2" if backend == "redis" else "data")
    second = headroom_proxy(provider.url, tmp_path / "log2", data, args)
    try:
        with httpx.Client(base_url=second.url, trust_env=False, timeout=30) as c:
            assert c.post(PATHS["anthropic"], json=body("anthropic"), headers=key).status_code == 200
            c.get("/stats")
            refused = c.post(PATHS["anthropic"], json=body("anthropic"), headers=key)
            assert_refusal(refused, "anthropic", 429, "budget_exceeded")
            doc = c.get("/stats").json()["budget"]
        assert doc["tenants"][tenant_of(key)]["spend_usd"] == pytest.approx(2 * COSTS["anthropic"])
        assert len(provider.requests) == 2
    finally:
        second.stop()


def test_banner_reports_every_spend_feature(tmp_path, redis_server):
    """`headroom proxy` with the issue's flags starts and names each feature in its banner."""
    from fake_provider import FakeProvider

    with FakeProvider() as p:
        proc = headroom_proxy(p.url, tmp_path / "log", tmp_path / "data",
                              ["--budget", "5", "--budget-period", "daily", "--rpm", "60",
                               "--tpm", "100000", "--redis-url", redis_server.url,
                               "--cache-ttl", "60", "--cache-max-entries", "100",
                               "--semantic-cache"],
                              env=clean_env(HEADROOM_CACHE="true"))
        try:
            health = httpx.get(proc.url + "/health", trust_env=False, timeout=30).json()
            banner = proc.output()
        finally:
            proc.stop()
    lines = {line.split("  ")[0].strip(): line for line in banner.splitlines() if "  " in line}
    assert "ttl 60 s, max 100 entries" in lines["response cache"]
    assert "60 rpm, 100000 tpm" in lines["rate limit"]
    assert "5 USD daily" in lines["budget"]
    assert lines["shared state"].split()[-1] == "redis"
    from headroom_core.embeddings import available

    semantic = lines["semantic cache"].split("  ", 1)[1].strip()  # on where the semantic extra is installed
    assert semantic == ("on (threshold 0.95)" if available() else
                        "not installed (pip install 'headroom-proxy[semantic]')")
    assert redis_server.url not in banner or "@" not in redis_server.url
    features = health["features"]
    assert features["rate_limit"].startswith("on") and features["budget"].startswith("on")
    assert features["response_cache"].startswith("on") and features["shared_state"] == "redis"
