"""`Deliverer`: the background worker that predicts queued tasks and delivers predictions.

Two loops share one outbox: one claims queued tasks, has the model predict them (through the
same scheduler slots as inline requests), and stores the predictions; the other sends ready
predictions to Label Studio in bulk, retrying with backoff until Label Studio confirms. Only the
process holding the data directory's `LeaderLock` runs them.

Label Studio recounts the project's tasks after each bulk import, at a cost that grows with the
predictions the project already holds, so many small imports take far longer than a few full
ones. While a job is still being predicted, the sender therefore waits until `send_size` of its
predictions are ready, sending fewer only once the job's prediction is over or the first of
them has waited `HOLD` seconds (`Outbox.claim_to_send`).
"""

from __future__ import annotations

import functools
import logging
import random
import time

import anyio
import anyio.to_thread

from .._datadir.leader import LeaderLock
from .._metrics import Metrics
from .._supervise import Supervisor
from ..labelstudio.client import LabelStudioClient, LabelStudioError
from .background import BackgroundPredictions
from .outbox import Item, Job
from .pace import Pace
from .reports import job_report

logger = logging.getLogger(__name__)

COMPACT_EVERY = 60.0  # seconds between two compactions of the outbox

PERMANENT = frozenset({400, 404, 422})  # Label Studio will never accept these as they are

HOLD = 5.0
"""Seconds a prediction waits at most for a full import while its job is still predicted (the
sender looks every `idle` seconds, and whenever a full import may be ready)."""


class Deliverer:
    """Runs the predict and send loops while this process is the leader."""

    def __init__(
        self,
        background: BackgroundPredictions,
        leader: LeaderLock,
        *,
        metrics: Metrics,
        batch_size: int = 32,
        send_size: int = 500,
        hold: float = HOLD,
        idle: float = 0.5,
        progress_every: float = 5.0,
        supervisor: Supervisor | None = None,
        pace: Pace | None = None,
    ) -> None:
        """Works the outbox of `background`, which wakes it whenever it queues work; `pace`
        sizes its batches (full ones when None); imports hold for `hold` seconds at most."""
        self.background = background
        self.pace = pace or Pace()
        self.outbox = background.outbox
        self.leader = leader
        self._metrics = metrics
        self.batch_size = batch_size
        self.send_size = send_size
        self.hold = hold
        self._unsent = 0  # tasks predicted since the sender was last woken
        self._idle = idle
        self._progress_every = progress_every
        self.wakeup = background.wakeup
        self._last_progress: dict[str, float] = {}
        self._supervisor = supervisor or Supervisor()

    async def run(self) -> None:
        """Wait for leadership, recover unfinished work, then run the loops (supervised):
        predicting, sending, and compacting the outbox once a minute."""
        if not await self._supervisor.retry("delivery: taking over the outbox", self._take_over):
            return
        loop = self._supervisor.loop
        async with anyio.create_task_group() as group:
            group.start_soon(
                functools.partial(loop, "delivery: predicting", self._predict_once, idle=self._rest)
            )
            group.start_soon(
                functools.partial(loop, "delivery: sending", self._send_once, idle=self._rest)
            )
            group.start_soon(
                functools.partial(loop, "delivery: compacting", self._compact, idle=COMPACT_EVERY)
            )

    async def _take_over(self) -> None:
        await self.leader.acquire()
        recovered = await anyio.to_thread.run_sync(self.outbox.recover)
        if recovered:
            logger.info("resuming %d unfinished background predictions", recovered)

    async def _rest(self) -> None:
        await self.wakeup.rest(self._idle)

    async def _compact(self) -> bool:
        """Keep the outbox small (`Outbox.compact`); always idles until the next round."""
        _, forgotten = await anyio.to_thread.run_sync(self.outbox.compact)
        if forgotten:
            logger.info("forgot %d finished background jobs", forgotten)
        return False

    async def _predict_once(self) -> bool:
        size = self.pace.batch(self.batch_size)  # small while annotators are at work
        claimed = await anyio.to_thread.run_sync(self.outbox.claim_to_predict, size)
        if claimed is None:
            self._wake_sender(0, drained=True)
            return False
        job, items = claimed
        results = await self.background.predict_items(job, items)
        await anyio.to_thread.run_sync(self.outbox.predicted, job.id, results)
        failed = sum(isinstance(r, str) for r in results.values())
        self._metrics.inc("relaxml_tasks_predicted_total", len(results) - failed, mode="background")
        if failed:
            self._metrics.inc("relaxml_predict_errors_total", failed, mode="background")
        self._wake_sender(len(results), drained=len(items) < size)
        if failed or self._progress_due(job):  # else only the sender can finish the job
            await self._progress(job)
        return True

    def _wake_sender(self, predicted: int, *, drained: bool) -> None:
        """Wake the sender when it may have a full import to send, or the queue ran dry; it
        looks every `idle` seconds anyway (held predictions, retries)."""
        self._unsent += predicted
        if self._unsent and (drained or self._unsent >= self.send_size):
            self._unsent = 0
            self.wakeup.set()

    async def _send_once(self) -> bool:
        claimed = await anyio.to_thread.run_sync(
            functools.partial(self.outbox.claim_to_send, self.send_size, hold=self.hold)
        )
        if claimed is None:
            return False
        job, items = claimed
        await anyio.to_thread.run_sync(self._send, job, items)
        await self._progress(job)
        return True

    def _send(self, job: Job, items: list[Item]) -> None:
        try:
            client = self.background.client_for(job)
            if any(item.verify for item in items):
                stored = self._already_stored(client, job, [i for i in items if i.verify])
                if stored:
                    self.outbox.delivered(job.id, stored)
                    items = [i for i in items if i.task_id not in stored]
            if items:
                self._post(client, job, items)
                self.outbox.delivered(job.id, [i.task_id for i in items])
                self._metrics.inc("relaxml_deliveries_total", len(items), outcome="ok")
        except LabelStudioError as exc:
            if exc.status_code in PERMANENT and len(items) > 1:
                for item in items:  # find the ones Label Studio refuses, deliver the rest
                    self._send(job, [item])
                return
            ids = [i.task_id for i in items]
            if exc.status_code in PERMANENT:
                self.outbox.give_up(job.id, ids, str(exc))
                self._metrics.inc("relaxml_deliveries_total", len(ids), outcome="failed")
                logger.warning("task %s: Label Studio refused the prediction: %s", ids[0], exc)
                return
            attempts = max(i.attempts for i in items)
            delay = min(60.0, 2.0**attempts) * random.uniform(0.5, 1.0)
            self.outbox.retry_later(job.id, ids, str(exc), delay)
            self._metrics.inc("relaxml_deliveries_total", len(ids), outcome="retried")
            logger.warning(
                "job %s: delivery of %d predictions failed, retrying in %.0f s: %s",
                job.id, len(ids), delay, exc,
            )  # fmt: skip

    def _post(self, client: LabelStudioClient, job: Job, items: list[Item]) -> None:
        payload = [
            {"task": item.task_id, **prediction}
            for item in items
            for prediction in item.prediction or []
        ]
        if job.project_id is not None and payload:
            started = time.perf_counter()
            client.request(
                "POST",
                f"api/projects/{job.project_id}/import/predictions",
                json=payload,
                retry=False,
            )
            logger.debug(
                "job %s: imported %d predictions in %.3f s",
                job.id, len(payload), time.perf_counter() - started,
            )  # fmt: skip
            return
        for prediction in payload:
            client.request("POST", "api/predictions/", json=prediction, retry=False)

    def _already_stored(self, client: LabelStudioClient, job: Job, items: list[Item]) -> set[int]:
        """The tasks among `items` that Label Studio already holds these predictions for."""
        wanted = {
            item.task_id: {p.get("model_version") for p in item.prediction or []} for item in items
        }
        if job.project_id is not None:
            found = client.request("GET", "api/predictions/", params={"project": job.project_id})
            existing = found.json()
        else:
            existing = []
            for task_id in wanted:
                existing += client.request(
                    "GET", "api/predictions/", params={"task": task_id}
                ).json()
        return {
            p["task"]
            for p in existing
            if isinstance(p, dict)
            and p.get("task") in wanted
            and p.get("model_version") in wanted[p["task"]]
        }

    def _progress_due(self, job: Job) -> bool:
        """Whether a progress line of `job` may be due (else `_progress` need not count)."""
        return time.monotonic() - self._last_progress.get(job.id, 0.0) >= self._progress_every

    async def _progress(self, job: Job) -> None:
        now = time.monotonic()
        counts = await anyio.to_thread.run_sync(self.outbox.counts, job.id)
        finished = counts["done"] + counts["failed"]
        if (
            finished < job.total
            and now - self._last_progress.get(job.id, 0.0) < self._progress_every
        ):
            return
        if finished >= job.total and job.id not in self._last_progress and job.total < 100:
            return  # small jobs: no progress lines
        self._last_progress[job.id] = now
        status = job_report(job, counts)
        logger.info(
            "job %s: %d/%d delivered, %d predicted, %d failed%s",
            job.id,
            counts["done"],
            job.total,
            counts["done"] + counts["ready"] + counts["sending"],
            counts["failed"],
            f", {status['rate']:.1f} tasks/s, ETA {status['eta']:.0f} s" if status["eta"] else "",
        )
        if finished >= job.total:
            self._last_progress.pop(job.id, None)
