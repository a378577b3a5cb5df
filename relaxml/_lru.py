"""`LRU`: the one bounded cache behind relaxml's projects, parsed configs, Label Studio
clients, media fetchers, remembered secrets and log throttling.

Entries are dropped least recently used first once there are more than `size` of them, or
once their costs (e.g. bytes) add up to more than `budget`. Not thread-safe: its owner locks.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A mapping bounded by count and by the summed `cost(key, value)` of its entries."""

    def __init__(
        self,
        size: int,
        budget: float = math.inf,
        cost: Callable[[K, V], int] | None = None,
    ) -> None:
        self.size = size
        self.budget = budget
        self.held = 0
        """The summed cost of the entries."""
        self._cost = cost
        self._entries: OrderedDict[K, tuple[V, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __setitem__(self, key: K, value: V) -> None:
        self.put(key, value)

    def get(self, key: K, *, touch: bool = True) -> V | None:
        """The value of `key` (marked as just used unless `touch` is False), or None."""
        found = self._entries.get(key)
        if found is None:
            return None
        if touch:
            self._entries.move_to_end(key)
        return found[0]

    def put(self, key: K, value: V, *, touch: bool = True) -> list[V]:
        """Store `value` (a known key keeps its place unless `touch`); return the values
        dropped to stay within the bounds, oldest first (the new one too, if it alone is over)."""
        cost = self._cost(key, value) if self._cost is not None else 0
        old = self._entries.get(key)
        if old is not None:
            self.held -= old[1]
        self._entries[key] = (value, cost)
        if touch:
            self._entries.move_to_end(key)
        self.held += cost
        dropped: list[V] = []
        while self._entries and (len(self._entries) > self.size or self.held > self.budget):
            _, (gone, gone_cost) = self._entries.popitem(last=False)
            self.held -= gone_cost
            dropped.append(gone)
        return dropped

    def pop(self, key: K) -> V | None:
        """Remove `key`; its value, or None when absent."""
        found = self._entries.pop(key, None)
        if found is None:
            return None
        self.held -= found[1]
        return found[0]

    def keys(self) -> list[K]:
        """Every key, least recently used first."""
        return list(self._entries)

    def values(self) -> list[V]:
        """Every value, least recently used first."""
        return [value for value, _ in self._entries.values()]

    def clear(self) -> list[V]:
        """Remove every entry; return their values."""
        values = self.values()
        self._entries.clear()
        self.held = 0
        return values
