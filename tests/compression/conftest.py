"""Fixtures for the compression tests: a fresh in-memory CCR store and a clean memo."""

from __future__ import annotations

import pytest

from headroom_core.ccr import CCRStore
from headroom_core.compression import engine
from headroom_core.storage.memory import MemoryStorage


@pytest.fixture
def ccr() -> CCRStore:
    return CCRStore(MemoryStorage())


@pytest.fixture(autouse=True)
def _fresh_memo():
    engine.MEMO.clear()
    yield
    engine.MEMO.clear()
