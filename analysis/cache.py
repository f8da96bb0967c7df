"""A process-wide cache bounded by entries and by bytes, for results that are large (poses, previews, photos).

Streamlit's st.cache_data bounds entries only, and one entry can be a 150 MB picture: this one also
counts each value's bytes (numpy arrays and bytes inside dataclasses, tuples and lists) and forgets the
least recently used entries until both bounds hold.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np

V = TypeVar("V")


def size_of(value: object) -> int:
    """The bytes held by numpy arrays and bytes in `value`, through dataclass fields, tuples, lists and dicts."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(size_of(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return sum(size_of(item) for item in value)
    if isinstance(value, dict):
        return sum(size_of(item) for item in value.values())
    return 0


class BoundedCache(Generic[V]):
    """Least recently used entries go first once there are more than max_entries or more than max_bytes.

    A value larger than max_bytes on its own is not kept at all. Thread-safe.
    """

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V) -> V:
        size = size_of(value)
        with self._lock:
            if key in self._entries:
                self._bytes -= self._entries.pop(key)[1]
            if size <= self.max_bytes:
                self._entries[key] = (value, size)
                self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                self._bytes -= self._entries.popitem(last=False)[1][1]
        return value

    def get_or_make(self, key: Hashable, make: Callable[[], V]) -> V:
        """The cached value, or `make()`'s, kept. Two callers may both make a missing value; the last one is kept."""
        value = self.get(key)
        return value if value is not None else self.put(key, make())
