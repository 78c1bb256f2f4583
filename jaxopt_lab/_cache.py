"""Bounded, clearable caches of compiled programs and trainers, kept across sweeps in one process.

A second sweep of the same structure reuses the programs the first one compiled; without a bound, a
long-lived process (a notebook, a test session, a search of many structures) would keep every program
and every trainer (with its device copy of the data) it ever built. Each cache keeps its most recently
used entries; `clear_all` empties every one (e.g. between experiments, or in tests that count
compilations).
"""

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any

_CACHES: list["BoundedCache"] = []


class BoundedCache:
    """A mapping that keeps at most `max_entries` entries, evicting the least recently used."""

    def __init__(self, name: str, max_entries: int):
        if max_entries < 1:
            raise ValueError(f"max_entries={max_entries!r} is out of range: valid range is [1, inf)")
        self.name = name
        self.max_entries = int(max_entries)
        self._entries: OrderedDict[Hashable, Any] = OrderedDict()
        _CACHES.append(self)

    def get(self, key: Hashable, default: Any = None) -> Any:
        if key not in self._entries:
            return default
        self._entries.move_to_end(key)
        return self._entries[key]

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Hashable]:
        """The keys, least recently used first."""
        return iter(list(self._entries))

    def clear(self) -> None:
        self._entries.clear()


def clear_all() -> None:
    """Empty every cache of compiled programs and trainers in this process."""
    for cache in _CACHES:
        cache.clear()
