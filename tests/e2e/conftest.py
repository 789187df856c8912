"""Fixtures of the end-to-end suite: one fake provider, and the proxy two ways (module-scoped)."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest

from fake_provider import FakeProvider
from proxy_runner import ProxyProcess, headroom_proxy, mitmdump


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider() as p:
        yield p


@pytest.fixture(autouse=True)
def _fresh_provider(request) -> None:
    if "provider" in request.fixturenames:
        request.getfixturevalue("provider").reset()


@pytest.fixture(scope="module")
def confdir(tmp_path_factory):
    return tmp_path_factory.mktemp("confdir")


@pytest.fixture(scope="module", params=["mitmdump", "headroom"])
def proxy(request, provider, tmp_path_factory, confdir) -> Iterator[ProxyProcess]:
    """The proxy as `mitmdump -s addons/headroom.py` and as `headroom proxy`."""
    tmp = tmp_path_factory.mktemp(request.param)
    if request.param == "mitmdump":
        proc = mitmdump(provider.url, tmp / "proxy.log", confdir)
    else:
        proc = headroom_proxy(provider.url, tmp / "proxy.log", tmp / "data")
    yield proc
    proc.stop()


@pytest.fixture
def client(proxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=30) as c:
        yield c
