"""Fixtures for the compression tests: a fresh in-memory CCR store, clean memos (decisions, counts)."""

from __future__ import annotations

import pytest

from headroom_core.ccr import CCRStore
from headroom_core.compression import counting, engine
from headroom_core.storage.memory import MemoryStorage


@pytest.fixture
def ccr() -> CCRStore:
    return CCRStore(MemoryStorage())


@pytest.fixture(autouse=True)
def _fresh_memo():
    engine.MEMO.clear()
    counting.COUNTS.clear()
    yield
    engine.MEMO.clear()
    counting.COUNTS.clear()
