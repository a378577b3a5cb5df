"""`LogThrottle`: log a kind of message at most once per interval.

A model that returns the wrong shape usually does so on every call; one log line a minute per
kind says why without flooding the log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ._lru import LRU

INTERVAL = 60.0
MAX_KINDS = 256


class LogThrottle:
    """Says whether a message of a given kind may be logged now (at most once per `interval`
    seconds per kind; at most `max_kinds` kinds remembered, the oldest forgotten first)."""

    def __init__(
        self,
        interval: float = INTERVAL,
        max_kinds: int = MAX_KINDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.max_kinds = max_kinds
        self._clock = clock
        self._last: LRU[str, float] = LRU(max_kinds)

    def seen(self, kind: str) -> bool:
        """True when `kind` was allowed before (and is still remembered)."""
        return self._last.get(kind, touch=False) is not None

    def allow(self, kind: str) -> bool:
        """True when nothing of `kind` was logged in the last `interval` seconds."""
        now = self._clock()
        last = self._last.get(kind, touch=False)
        if last is not None and now - last < self.interval:
            return False
        self._last.put(kind, now)
        return True
