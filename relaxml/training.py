"""Training runs: `fit` in the background, one run at a time per project, events coalesced.

A webhook only *submits* an event and gets an answer at once. If no run is active for the
project, a run starts; if one is running, the event joins the one queued follow-up run (created
on demand), so 100 annotations during a run give one more run, not 100.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
from anyio.abc import TaskGroup

from .errors import describe
from .events import TrainingEvent

logger = logging.getLogger("relaxml")

FitFunction = Callable[[TrainingEvent], "str | None"]


@dataclass
class TrainingRun:
    """One run of `fit`: its state, timing, result and error."""

    id: str
    project: str
    action: str
    state: str = "queued"  # queued | running | succeeded | failed
    events: int = 1
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    version: str | None = None
    error: str | None = None
    event: TrainingEvent | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON."""
        return {
            "id": self.id,
            "project": self.project,
            "action": self.action,
            "state": self.state,
            "events": self.events,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "version": self.version,
            "error": self.error,
        }


class Trainer:
    """Runs `fit` off the request path with single-flight per project and coalescing."""

    def __init__(
        self,
        fit: FitFunction,
        task_group: TaskGroup,
        *,
        on_version: Callable[[str], None],
        history: int = 100,
    ) -> None:
        self._fit = fit
        self._task_group = task_group
        self._on_version = on_version
        self._history = history
        self._ids = itertools.count(1)
        self._runs: dict[str, TrainingRun] = {}
        self._active: dict[str, TrainingRun] = {}
        self._queued: dict[str, TrainingRun] = {}

    def submit(self, event: TrainingEvent) -> TrainingRun:
        """Start a run for this event, or fold it into the project's queued follow-up run."""
        key = event.project_key
        queued = self._queued.get(key)
        if queued is not None:
            queued.events += 1
            queued.event = event
            queued.action = event.action
            return queued
        run = TrainingRun(id=str(next(self._ids)), project=key, action=event.action, event=event)
        self._remember(run)
        if key in self._active:
            self._queued[key] = run
        else:
            self._active[key] = run
            self._task_group.start_soon(self._drive, key, run)
        return run

    def get(self, run_id: str) -> TrainingRun | None:
        """A run by id, if still remembered."""
        return self._runs.get(run_id)

    def runs(self) -> list[TrainingRun]:
        """Remembered runs, oldest first."""
        return list(self._runs.values())

    async def _drive(self, key: str, run: TrainingRun | None) -> None:
        while run is not None:
            await self._execute(run)
            run = self._queued.pop(key, None)
            if run is None:
                del self._active[key]
            else:
                self._active[key] = run

    async def _execute(self, run: TrainingRun) -> None:
        assert run.event is not None
        run.state, run.started_at = "running", time.time()
        logger.info("training run %s started (project %s, %s)", run.id, run.project, run.action)
        try:
            version = await anyio.to_thread.run_sync(self._fit, run.event, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            run.state, run.error = "failed", "interrupted by shutdown"
            raise
        except Exception as exc:
            run.state, run.error = "failed", describe(exc)
            logger.error("training run %s failed", run.id, exc_info=exc)
        else:
            run.state, run.version = "succeeded", version
            if version is not None:
                self._on_version(version)
            logger.info(
                "training run %s succeeded in %.1f s%s",
                run.id,
                time.time() - run.started_at,
                f", version {version}" if version else "",
            )
        finally:
            run.finished_at = time.time()
            run.event = None

    def _remember(self, run: TrainingRun) -> None:
        self._runs[run.id] = run
        while len(self._runs) > self._history:
            oldest = next(iter(self._runs))
            if self._runs[oldest].state in ("queued", "running"):
                break
            del self._runs[oldest]
