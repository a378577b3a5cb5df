"""`Trainer`: runs `fit` in the background, once per batch of events, on the leader only.

```
webhook / train  ──submit──▶  TrainingStore (events queue, any worker)
                                  │  leader loop: a project is ready when it has START_TRAINING
                                  │  pending, or `train_every` annotation events
                                  ▼
                 run: claim all pending events of the project ─▶ merge ─▶ fit(event) in a thread
                                  │  events arriving meanwhile wait for the next run (coalescing)
                                  ▼
                 version returned ─▶ save artifacts ─▶ VersionStore.record ─▶ every worker swaps
```

One run at a time in the whole data directory (the model is one object); a failure is
recorded and serving goes on; a cancelled run's result is discarded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread

from .errors import describe
from .events import ANNOTATION_ACTIONS, START_TRAINING, RunControl, TrainingEvent, merge
from .leader import LeaderLock
from .metrics import Metrics
from .trainingstore import RunRecord, TrainingStore

logger = logging.getLogger("relaxml.training")

Fit = Callable[[TrainingEvent], "str | None"]
"""Runs the model's `fit` (blocking) and returns the new version or None."""

Finish = Callable[[str, int, TrainingEvent], Awaitable[None]]
"""Called (on the event loop) with a new version, its run id and the run's event."""

ClientFor = Callable[[TrainingEvent], RunControl]


class Trainer:
    """Queues events from any worker and runs them on the leader."""

    def __init__(
        self,
        store: TrainingStore,
        leader: LeaderLock,
        *,
        fit: Fit,
        finish: Finish,
        control_for: ClientFor,
        metrics: Metrics,
        train_every: int = 1,
        idle: float = 0.5,
    ) -> None:
        self.store = store
        self.leader = leader
        self._fit = fit
        self._finish = finish
        self._control_for = control_for
        self._metrics = metrics
        self.train_every = train_every
        self._idle = idle
        self._wake = anyio.Event()

    def submit(self, event: TrainingEvent) -> str:
        """Queue an event (blocking; call from a worker thread). Returns `event-<id>`."""
        event_id = self.store.add_event(event.project_key, event.action, event.to_payload())
        return f"event-{event_id}"

    def wake(self) -> None:
        """An event was queued: look for work now."""
        self._wake.set()

    async def run(self) -> None:
        """Wait for leadership, recover interrupted runs, then train whenever a project is ready."""
        await self.leader.acquire()
        interrupted = await anyio.to_thread.run_sync(self.store.recover)
        if interrupted:
            logger.warning("%d training runs were interrupted; their events are queued again",
                           interrupted)  # fmt: skip
        while True:
            project = await anyio.to_thread.run_sync(
                self.store.ready_project, self.train_every, ANNOTATION_ACTIONS
            )
            if project is None:
                with anyio.move_on_after(self._idle):
                    await self._wake.wait()
                self._wake = anyio.Event()
                continue
            await self._execute(project)

    async def _execute(self, project: str) -> None:
        run_id, payloads = await anyio.to_thread.run_sync(
            self.store.start_run, project, START_TRAINING
        )
        events = [TrainingEvent.from_payload(p) for p in payloads]
        control = await anyio.to_thread.run_sync(self._control_for, events[-1])
        event = merge(events, control)
        logger.info(
            "training run %d started (project %s, %s, %d events)",
            run_id, project, event.action, len(events),
        )  # fmt: skip
        started = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_cancel, run_id, control)
            version: str | None = None
            error: str | None = None
            try:
                version = await anyio.to_thread.run_sync(self._fit, event, abandon_on_cancel=True)
            except Exception as exc:
                state, error = "failed", describe(exc)
                logger.error("training run %d failed", run_id, exc_info=exc)
            else:
                state = "succeeded"
            group.cancel_scope.cancel()
        if control.cancelled.is_set():
            state, version = "cancelled", None
        used = control.annotations_used or len(event.annotations)
        if state == "succeeded" and version is not None:
            try:
                await self._finish(version, run_id, event)
            except Exception as exc:
                state, error = "failed", f"saving version {version}: {describe(exc)}"
                logger.error("training run %d: saving version %s failed", run_id, version,
                             exc_info=exc)  # fmt: skip
                version = None
        await anyio.to_thread.run_sync(
            lambda: self.store.finish_run(
                run_id, state, version=version, error=error, annotations=used
            )
        )
        self._metrics.inc("relaxml_training_runs_total", state=state)
        logger.info(
            "training run %d %s in %.1f s%s",
            run_id, state, time.monotonic() - started, f", version {version}" if version else "",
        )  # fmt: skip

    async def _watch_cancel(self, run_id: int, control: RunControl) -> None:
        while True:
            await anyio.sleep(0.25)
            record = await anyio.to_thread.run_sync(self.store.run, run_id)
            if record is not None and record.cancel_requested:
                control.cancelled.set()
                return

    def describe_runs(self, limit: int = 20) -> list[dict[str, object]]:
        """Recent runs (newest first) and the queued events per project, as JSON."""
        queued: list[dict[str, object]] = [
            {"id": None, "project": project, "state": "queued", "events": count}
            for project, count in self.store.pending().items()
        ]
        return queued + [run.to_dict() for run in self.store.runs(limit)]

    def lookup(self, job_id: str) -> dict[str, object] | None:
        """A run (`run-N`) or a queued event (`event-N`) as JSON, or None."""
        kind, _, number = job_id.partition("-")
        if not number.isdigit():
            return None
        if kind == "run":
            record = self.store.run(int(number))
            return record.to_dict() if record else None
        if kind == "event":
            exists, run_id = self.store.event_run(int(number))
            if not exists:
                return None
            record = self.store.run(run_id) if run_id else None
            return record.to_dict() if record else {"id": None, "state": "queued"}
        return None

    def cancel(self, job_id: str) -> RunRecord | None:
        """Ask run `run-N` to stop."""
        kind, _, number = job_id.partition("-")
        if kind != "run" or not number.isdigit():
            return None
        return self.store.request_cancel(int(number))
