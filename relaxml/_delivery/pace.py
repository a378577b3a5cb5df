"""`Pace`: how large a bite of a background job the model takes at once.

Background jobs are predicted in batches of the model's `max_batch_size` (32 when unset). While
annotators are at work (an interactive request within the last `WINDOW` seconds), a batch is
cut to about `SLICE` seconds of the model's work, from the time per task measured on recent
calls, so that an annotator's request, which goes ahead of queued bulk work, never waits
long behind the call already running. With no annotator about, full batches make the most of
the model.
"""

from __future__ import annotations

import math
import time

SLICE = 0.02
"""Seconds of model work a background batch is cut to while annotators are at work."""
WINDOW = 60.0
"""Seconds after an interactive request during which background batches stay small."""


class Pace:
    """The time per task of recent `predict` calls, and whether annotators are at work."""

    def __init__(self, slice_seconds: float = SLICE, window: float = WINDOW) -> None:
        self.slice_seconds = slice_seconds
        self.window = window
        self.per_task: float | None = None  # seconds, a moving average
        self._interactive_at = -math.inf

    def note_interactive(self) -> None:
        """An annotator is waiting on a request now."""
        self._interactive_at = time.monotonic()

    def record(self, tasks: int, seconds: float) -> None:
        """A `predict` call took `seconds` for `tasks` tasks."""
        if tasks <= 0 or not math.isfinite(seconds) or seconds < 0:
            return
        sample = seconds / tasks
        self.per_task = sample if self.per_task is None else 0.8 * self.per_task + 0.2 * sample

    def batch(self, largest: int) -> int:
        """How many tasks the next background batch takes (1 to `largest`)."""
        if self.per_task is None or time.monotonic() - self._interactive_at > self.window:
            return largest
        return max(1, min(largest, int(self.slice_seconds / max(self.per_task, 1e-9))))
