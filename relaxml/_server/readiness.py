"""`Readiness`: whether every worker has loaded and warmed up its model (`GET /ready`)."""

from __future__ import annotations

from .._datadir.workers import WorkerSlots


class Readiness:
    """Whether every worker has loaded and warmed up its model: what `/ready` answers."""

    def __init__(self, workers: int, slots: WorkerSlots | None) -> None:
        self.workers = workers
        self._slots = slots
        self._ready = False

    def mark_ready(self) -> None:
        """This worker's model has loaded and warmed up."""
        if self._slots is not None:
            self._slots.mark_ready()
        self._ready = True

    def count(self) -> int:
        """How many workers are ready (blocking: reads the data directory's locks)."""
        if self._slots is None:
            return 1 if self._ready else 0
        return self._slots.ready_count()
