"""A bounded, thread-safe LRU map for the process-wide caches that the optimiser's worker threads
share: the compression engine's decisions by content, and fitting's unit features, harder
renderings and CCR puts."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class LRU:
    def __init__(self, entries: int) -> None:
        self._entries = entries
        self._data: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        """The value under `key` (now the most recently used), or None."""
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            self._trim()

    def setdefault(self, key: Any, value: Any) -> Any:
        """The value already under `key` (another thread got there first), else `value`, stored."""
        with self._lock:
            current = self._data.setdefault(key, value)
            self._data.move_to_end(key)
            self._trim()
            return current

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def _trim(self) -> None:
        while len(self._data) > self._entries:
            self._data.popitem(last=False)
