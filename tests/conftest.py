"""Shared pytest fixtures. Several engineers append fixtures here: keep each one self-contained."""

from __future__ import annotations

import pytest


@pytest.fixture
def redis_server():
    """A fresh redis-server on a free loopback port, killed by pid afterwards (see redis_server.py)."""
    try:
        from redis_server import RedisServer  # tests/ is on sys.path (rootdir conftest)
    except ImportError:  # tests/ became a package
        from tests.redis_server import RedisServer
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_provider():
    """A fake Anthropic/OpenAI provider on a free loopback port (tests/fake_provider.py);
    `fake_provider.url` is its base URL, `.requests` what it received, `.script(...)` replies."""
    from fake_provider import FakeProvider

    with FakeProvider() as provider:
        yield provider


def pytest_configure(config):
    """Every headroom the tests start (in process or as a subprocess) keeps its state in a
    throw-away directory, never in the user's ~/.headroom, unless a test names its own."""
    import os
    import tempfile

    os.environ.setdefault("HEADROOM_DATA_DIR", tempfile.mkdtemp(prefix="headroom-tests-"))
