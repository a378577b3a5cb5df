"""`BackgroundPredictions`: the background side of `/predict`, and `send_predictions`.

It decides whether a request goes to the background (the delivery mode and the `auto` rule),
queues it in the outbox, predicts queued items when the `Deliverer` asks (isolating tasks the
model fails on; a task that runs out of memory alone fails as one item), and queues predictions
a model sends itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import anyio.to_thread

from .._oom import is_oom_entry
from .._supervise import Wakeup
from ..context import Context, RunModel
from ..errors import Failure
from ..labelstudio._pool import ClientPool, MediaPool
from ..labelstudio.client import LabelStudioClient
from ..memo import Memo
from ..prediction import TaskOutput, normalize
from ..projects import Project, ProjectRegistry
from ..protocol import PredictRequest, Task, parse_task
from ..settings import Settings
from .outbox import Item, Job, Outbox

logger = logging.getLogger(__name__)


class BackgroundPredictions:
    """Background jobs of one backend: deciding, queueing, predicting queued items."""

    def __init__(
        self,
        *,
        settings: Settings,
        delivery: str,
        outbox: Outbox,
        projects: ProjectRegistry,
        clients: ClientPool,
        run_model: RunModel,
        media: MediaPool,
        memo: Memo,
        version: Callable[[Project], str],
        name: str,
    ) -> None:
        self.settings = settings
        self.delivery = delivery
        self.outbox = outbox
        self.projects = projects
        self.clients = clients
        self._run_model = run_model
        self.media = media
        self.memo = memo
        self._version = version
        self._name = name
        self.wakeup = Wakeup()  # set whenever work is queued; the deliverer rests on it
        self._inline_warning = -1e9

    def decided(self, request: PredictRequest) -> bool | None:
        """Whether this request goes to the background when the settings alone decide it
        (docs/delivery.md, "The auto rule"); None when `wanted` must ask about Label Studio."""
        if self.delivery == "inline" or request.context is not None:
            return False
        if self.delivery == "background":
            return True
        if len(request.tasks) <= self.settings.auto_inline_max:
            return False
        return None

    async def wanted(self, request: PredictRequest, project: Project) -> bool:
        """Whether a request the settings leave open (`decided` gave None) goes to the
        background: when Label Studio's API works for its project (docs/delivery.md)."""
        known, problem = self.clients.known_problem(
            project.hostname, project.access_token, project.id
        )
        if not known:
            problem = await anyio.to_thread.run_sync(
                self.clients.problem, project.hostname, project.access_token, project.id
            )
        if problem and time.monotonic() - self._inline_warning > 300:
            self._inline_warning = time.monotonic()
            logger.warning(
                "answering %d tasks inline: background delivery needs Label Studio's API (%s)",
                len(request.tasks),
                problem,
            )
        return problem is None

    async def enqueue(
        self, request: PredictRequest, project: Project, context: Context
    ) -> dict[str, Any]:
        """Queue the request's tasks as one job; the answer Label Studio gets at once."""
        version = self._version(project)
        job, count = await anyio.to_thread.run_sync(
            lambda: self.outbox.add_job(
                project_uid=project.uid,
                project_id=project.id or request.tasks[0].project_id,
                model_version=version,
                label_config=context.label_config,
                hostname=project.hostname,
                tasks=[task.raw or {"id": task.id, "data": task.data} for task in request.tasks],
            )
        )
        self.wakeup.set()
        logger.info("job %s: %d tasks queued for background prediction", job.id, count)
        return {"results": [], "model_version": version, "job": job.id, "queued": count}

    async def predict_items(self, job: Job, items: list[Item]) -> dict[int, list[Any] | str]:
        """Predict claimed outbox items; one failing task does not fail the others."""
        known = self.projects.get(job.project_uid)
        project = known or Project(
            uid=job.project_uid,
            id=job.project_id,
            label_config=job.label_config,
            hostname=job.hostname,
        )
        context = Context(
            project=project,
            label_config=job.label_config or project.label_config,
            media=self.media.get(project.hostname, project.access_token),
            memo=self.memo,
        )
        tasks: list[Task] = []
        results: dict[int, list[Any] | str] = {}
        for item in items:
            try:
                tasks.append(parse_task(item.task))
            except Failure as exc:
                results[item.task_id] = exc.detail
        try:
            entries = await self._run_model(tasks, context) if tasks else []
        except Failure as exc:
            if len(tasks) == 1:
                return {**results, tasks[0].id: exc.detail}
            for task in tasks:  # isolate the task(s) the model fails on
                results.update(await self.predict_items(job, [_item_of(job, task)]))
            return results
        for task, entry in zip(tasks, entries, strict=True):
            if is_oom_entry(entry):  # out of memory alone: a failed item, the others delivered
                results[task.id] = str(entry["detail"])
            else:
                results[task.id] = entry if isinstance(entry, list) else [entry]
        return results

    def client_for(self, job: Job) -> LabelStudioClient:
        """The Label Studio client a job's predictions are delivered with."""
        known = self.projects.get(job.project_uid)
        hostname = job.hostname or (known.hostname if known else None)
        # the project's token only goes to the hostname of the /setup that sent it
        token = known.access_token if known and known.hostname == hostname else None
        return self.clients.get(hostname, token)

    def send(self, predictions: Mapping[int, TaskOutput], project: Project | int) -> str:
        """Queue predictions a model sends itself (`LabelStudioModel.send_predictions`)."""
        if isinstance(project, int):
            project = self.projects.by_id(project) or Project(uid=str(project), id=project)
        ids = list(predictions)
        version = self._version(project)
        entries = normalize(
            [predictions[i] for i in ids],
            len(ids),
            model_version=version,
            source=f"{self._name}.send_predictions",
        )
        job, _ = self.outbox.add_job(
            project_uid=project.uid,
            project_id=project.id,
            model_version=version,
            label_config=project.label_config,
            hostname=project.hostname,
            predictions=[
                (i, e if isinstance(e, list) else [e]) for i, e in zip(ids, entries, strict=True)
            ],
        )
        self.wakeup.set()
        return job.id


def _item_of(job: Job, task: Task) -> Item:
    return Item(job.id, task.id, job.project_id, job.model_version, task.raw, None, 0, False)
