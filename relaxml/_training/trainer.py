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

One run at a time in the whole data directory (the model is one object; a per-project model's
run trains the instance of the run's project only); a failure is
recorded and serving goes on; a cancelled run's result is discarded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread

from .._datadir.leader import LeaderLock
from .._metrics import Metrics
from .._supervise import Supervisor, Wakeup
from ..errors import describe
from ..events import ANNOTATION_ACTIONS, START_TRAINING, RunControl, TrainingEvent, merge
from ..labelstudio._pool import ClientPool, MediaPool
from ..projects import ProjectRegistry
from ..protocol import ascii_int
from .keeper import ModelKeeper
from .store import RunRecord, TrainingStore

logger = logging.getLogger(__name__)


class Trainer:
    """Queues events from any worker and runs them on the leader."""

    def __init__(
        self,
        store: TrainingStore,
        leader: LeaderLock,
        *,
        keeper: ModelKeeper,
        clients: ClientPool,
        projects: ProjectRegistry,
        metrics: Metrics,
        media: MediaPool | None = None,
        train_every: int = 1,
        idle: float = 0.5,
        supervisor: Supervisor | None = None,
        keeper_for: Callable[[str], Awaitable[ModelKeeper]] | None = None,
    ) -> None:
        """`keeper_for(project_key)`: the keeper whose model trains on a project's events (a
        per-project model's); `keeper` for every project when None."""
        self.store = store
        self.leader = leader
        self.keeper = keeper
        self.clients = clients
        self.projects = projects
        self.media = media
        self._metrics = metrics
        self.train_every = train_every
        self._idle = idle
        self._keeper_for = keeper_for
        self.wakeup = Wakeup()
        self._supervisor = supervisor or Supervisor()

    def submit(self, event: TrainingEvent) -> str:
        """Queue an event (blocking; call from a worker thread). Returns `event-<id>`."""
        event_id = self.store.add_event(event.project_key, event.action, event.to_payload())
        return f"event-{event_id}"

    async def run(self) -> None:
        """Wait for leadership, recover interrupted runs, then train whenever a project is ready.

        Supervised: an error outside `fit` fails that run (recorded), and the loop goes on.
        """
        if await self._supervisor.retry("training: taking over the queue", self._take_over):
            await self._supervisor.loop("training", self._step, idle=self._rest)

    async def _take_over(self) -> None:
        await self.leader.acquire()
        interrupted = await anyio.to_thread.run_sync(self.store.recover)
        if interrupted:
            logger.warning("%d training runs were interrupted; their events are queued again",
                           interrupted)  # fmt: skip

    async def _rest(self) -> None:
        await self.wakeup.rest(self._idle)

    async def _step(self) -> bool:
        project = await anyio.to_thread.run_sync(
            self.store.ready_project, self.train_every, ANNOTATION_ACTIONS
        )
        if project is None:
            return False
        await self._execute(project)
        return True

    async def _execute(self, project: str) -> None:
        run_id, payloads = await anyio.to_thread.run_sync(
            self.store.start_run, project, START_TRAINING
        )
        started = time.monotonic()
        try:
            state, version, error, used = await self._train(run_id, project, payloads)
        except Exception as exc:  # anything but fit itself: the run fails, training goes on
            state, version, error, used = "failed", None, describe(exc), 0
            logger.error("training run %d failed", run_id, exc_info=exc)
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

    def _control_for(self, event: TrainingEvent) -> RunControl:
        """What a run can reach: the project's Label Studio client (None without a usable URL)
        and when the project last trained successfully. Blocking."""
        project = self.projects.by_id(event.project_id)
        hostname = project.hostname if project else None
        token = project.access_token if project else None
        client = self.clients.find(hostname, token)
        if client is None:
            logger.warning("training without a Label Studio client (no usable Label Studio URL)")
        media = self.media.get(hostname, token) if self.media is not None else None
        return RunControl(client, self.store.last_success(event.project_key), media)

    async def _train(
        self, run_id: int, project: str, payloads: list[dict[str, Any]]
    ) -> tuple[str, str | None, str | None, int]:
        events = [TrainingEvent.from_payload(p) for p in payloads]
        control = await anyio.to_thread.run_sync(self._control_for, events[-1])
        event = merge(events, control)
        logger.info(
            "training run %d started (project %s, %s, %d events)",
            run_id, project, event.action, len(events),
        )  # fmt: skip
        keeper = await self._keeper_for(project) if self._keeper_for else self.keeper
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_cancel, run_id, control)
            version: str | None = None
            error: str | None = None
            try:
                version = await anyio.to_thread.run_sync(keeper.fit, event, abandon_on_cancel=True)
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
                version = await keeper.finish(version, run_id, event)
            except Exception as exc:
                state, error = "failed", f"saving version {version}: {describe(exc)}"
                logger.error("training run %d: saving version %s failed", run_id, version,
                             exc_info=exc)  # fmt: skip
                version = None
        return state, version, error, used

    async def _watch_cancel(self, run_id: int, control: RunControl) -> None:
        warned = False
        while True:
            await anyio.sleep(0.25)
            try:
                record = await anyio.to_thread.run_sync(self.store.run, run_id)
            except Exception as exc:  # fit goes on; the next look may work
                if not warned:
                    warned = True
                    logger.warning("training run %d: checking for a cancel failed: %s", run_id,
                                   describe(exc))  # fmt: skip
                continue
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
        kind, _, digits = job_id.partition("-")
        number = ascii_int(digits)
        if number is None:
            return None
        if kind == "run":
            record = self.store.run(number)
            return record.to_dict() if record else None
        if kind == "event":
            exists, run_id = self.store.event_run(number)
            if not exists:
                return None
            record = self.store.run(run_id) if run_id else None
            return record.to_dict() if record else {"id": None, "state": "queued"}
        return None

    def cancel(self, job_id: str) -> RunRecord | None:
        """Ask run `run-N` to stop."""
        kind, _, digits = job_id.partition("-")
        number = ascii_int(digits)
        if kind != "run" or number is None:
            return None
        return self.store.request_cancel(number)
