"""`Backend`: what each route does, with the model, the projects, the scheduler and the trainer.

It speaks in decoded JSON bodies and plain dicts; `app.py` does the HTTP around it.
"""

from __future__ import annotations

import logging
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio.to_thread
from anyio.abc import TaskGroup

from .access import ClientPool
from .batching import MicroBatcher
from .client import LabelStudioClient
from .context import Context
from .delivery import Deliverer, job_status
from .errors import BadRequest, HTTPError, ModelError, ModelOutputError, describe
from .events import START_TRAINING, TrainingEvent, event_from_legacy_train, event_from_webhook
from .leader import LeaderLock
from .metrics import Metrics
from .model import LabelStudioModel
from .outbox import Item, Job, Outbox
from .prediction import Entry, TaskOutput, normalize
from .projects import Project, ProjectRegistry
from .protocol import PredictRequest, Task, as_mapping, parse_predict, parse_setup, parse_task
from .scheduler import Scheduler, chunked
from .settings import Settings
from .training import Trainer

logger = logging.getLogger("relaxml")

_SECRET_PARAMS = frozenset({"login", "password"})
DEFAULT_MERGE_SIZE = 64  # tasks per merged call when batch_timeout is set without max_batch_size


class Backend:
    """One served model and its state. Built in the app's lifespan, inside the event loop."""

    def __init__(
        self,
        model: LabelStudioModel,
        settings: Settings,
        task_group: TaskGroup,
        metrics: Metrics | None = None,
    ) -> None:
        self.model = model
        self.settings = settings
        self.name = type(model).__name__
        self.delivery = settings.delivery or model.delivery
        self._inline_warning = -1e9
        self.metrics = metrics or Metrics()
        self.projects = ProjectRegistry()
        self.scheduler = Scheduler(
            max_concurrency=settings.max_concurrency, max_queue=settings.max_queue
        )
        self.trainer = Trainer(self._fit, task_group, on_version=self._set_version)
        self.versions: list[str] = [self.model_version]
        self.clients = ClientPool(settings.label_studio_url, settings.label_studio_api_key)
        data_dir = Path(settings.data_dir)
        self.outbox = Outbox(data_dir / "outbox.sqlite3")
        self.deliverer = Deliverer(
            self.outbox,
            LeaderLock(data_dir / "leader.lock"),
            predict=self._predict_items,
            client_for=self._client_for_job,
            metrics=self.metrics,
            batch_size=model.max_batch_size or 32,
        )
        self.batcher = (
            MicroBatcher(
                self._run_model,
                task_group,
                max_size=model.max_batch_size or DEFAULT_MERGE_SIZE,
                timeout=model.batch_timeout,
            )
            if model.batch_timeout
            else None
        )
        model._relaxml_sender = self._send_from_model  # type: ignore[attr-defined]
        self.metrics.collector(self._gauges)
        task_group.start_soon(self.deliverer.run)

    def _gauges(self) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], float]]:
        outbox = self.outbox.counts()
        runs: dict[str, int] = {}
        for run in self.trainer.runs():
            runs[run.state] = runs.get(run.state, 0) + 1
        return [
            *(
                ("relaxml_outbox_items", "gauge", "Background items by state", (("state", k),), v)
                for k, v in outbox.items()
            ),
            *(
                ("relaxml_training_runs", "gauge", "Remembered training runs by state",
                 (("state", k),), v)
                for k, v in sorted(runs.items())
            ),
            ("relaxml_model_info", "gauge", "The served model and its version",
             (("model", self.name), ("version", self.model_version)), 1),
        ]  # fmt: skip

    def close(self) -> None:
        """Release the outbox, the leader lock and the API clients."""
        self.deliverer.leader.release()
        self.outbox.close()
        self.clients.close()

    @property
    def model_version(self) -> str:
        """The model's current version string."""
        return self.model.model_version

    def health(self) -> dict[str, Any]:
        """`GET /health`: instant, never waits for the model."""
        return {
            "status": "UP",
            "v2": True,
            "model_class": self.name,
            "model_version": self.model_version,
        }

    async def setup(self, body: object) -> dict[str, Any]:
        """`POST /setup`: remember the project; run the model's `setup` hook if it changed."""
        request = parse_setup(body)
        project, changed = self.projects.update_from_setup(request)
        if changed:
            await self._call_user(self.model.setup, project, what="setup")
        return {"model_version": self.model_version}

    async def predict(self, body: object) -> dict[str, Any]:
        """`POST /predict`: one entry per task, in order, or a background job."""
        request = parse_predict(body)
        project = self.projects.for_predict(request)
        context = Context(
            project=project,
            label_config=request.label_config or project.label_config,
            interactive=request.context,
            params={k: v for k, v in request.params.items() if k not in _SECRET_PARAMS},
        )
        results: list[Entry] = []
        if not request.tasks:
            return {"results": results, "model_version": self.model_version}
        if await self._in_background(request, project):
            return await self._enqueue(request, project, context)
        async with self.scheduler.admit():
            for chunk in chunked(request.tasks, self.model.max_batch_size):
                run = self.batcher.submit if self.batcher else self._run_model
                try:
                    results.extend(await run(list(chunk), context))
                except HTTPError:
                    self.metrics.inc("relaxml_predict_errors_total", len(chunk), mode="inline")
                    raise
        self.metrics.inc("relaxml_tasks_predicted_total", len(results), mode="inline")
        return {"results": results, "model_version": self.model_version}

    async def _in_background(self, request: PredictRequest, project: Project) -> bool:
        if self.delivery == "inline" or request.is_interactive:
            return False
        if self.delivery == "background":
            return True
        if len(request.tasks) <= self.settings.auto_inline_max:
            return False
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

    async def _enqueue(
        self, request: PredictRequest, project: Project, context: Context
    ) -> dict[str, Any]:
        job, count = await anyio.to_thread.run_sync(
            lambda: self.outbox.add_job(
                project_uid=project.uid,
                project_id=project.id or request.tasks[0].project_id,
                model_version=self.model_version,
                label_config=context.label_config,
                hostname=project.hostname,
                tasks=[task.raw or {"id": task.id, "data": task.data} for task in request.tasks],
            )
        )
        self.deliverer.wake()
        logger.info("job %s: %d tasks queued for background prediction", job.id, count)
        return {"results": [], "model_version": self.model_version, "job": job.id, "queued": count}

    async def _run_model(self, tasks: list[Task], context: Context) -> list[Entry]:
        version = self.model_version
        try:
            if self.model.predicts_async():
                output = await self.scheduler.run_async(self.model.predict, tasks, context)
            else:
                output = await self.scheduler.run_sync(self.model.predict, tasks, context)
        except HTTPError:
            raise
        except Exception as exc:
            logger.error("%s.predict raised on %d tasks", self.name, len(tasks), exc_info=exc)
            raise ModelError(f"{self.name}.predict raised {describe(exc)}") from None
        return normalize(output, len(tasks), model_version=version, source=f"{self.name}.predict")

    async def _predict_items(self, job: Job, items: list[Item]) -> dict[int, list[Any] | str]:
        """Predict claimed outbox items; one failing task does not fail the others."""
        known = self.projects.get(job.project_uid)
        project = known or Project(
            uid=job.project_uid,
            id=job.project_id,
            label_config=job.label_config,
            hostname=job.hostname,
        )
        context = Context(project=project, label_config=job.label_config or project.label_config)
        tasks: list[Task] = []
        results: dict[int, list[Any] | str] = {}
        for item in items:
            try:
                tasks.append(parse_task(item.task))
            except HTTPError as exc:
                results[item.task_id] = exc.detail
        try:
            entries = await self._run_model(tasks, context) if tasks else []
        except HTTPError as exc:
            if len(tasks) == 1:
                return {**results, tasks[0].id: exc.detail}
            for task in tasks:  # isolate the task(s) the model fails on
                results.update(await self._predict_items(job, [_item_of(job, task)]))
            return results
        for task, entry in zip(tasks, entries, strict=True):
            results[task.id] = entry if isinstance(entry, list) else [entry]
        return results

    def _client_for_job(self, job: Job) -> LabelStudioClient:
        known = self.projects.get(job.project_uid)
        hostname = job.hostname or (known.hostname if known else None)
        return self.clients.get(hostname, known.access_token if known else None)

    def _send_from_model(
        self, predictions: Mapping[int, TaskOutput], project: Project | int
    ) -> str:
        if isinstance(project, int):
            found = next((p for p in self.projects.all() if p.id == project), None)
            project = found or Project(uid=str(project), id=project)
        ids = list(predictions)
        entries = normalize(
            [predictions[i] for i in ids],
            len(ids),
            model_version=self.model_version,
            source=f"{self.name}.send_predictions",
        )
        job, _ = self.outbox.add_job(
            project_uid=project.uid,
            project_id=project.id,
            model_version=self.model_version,
            label_config=project.label_config,
            hostname=project.hostname,
            predictions=[
                (i, e if isinstance(e, list) else [e]) for i, e in zip(ids, entries, strict=True)
            ],
        )
        return job.id

    def list_jobs(self) -> dict[str, Any]:
        """`GET /jobs`: background prediction jobs, newest first, and training runs."""
        jobs = [job_status(job, self.outbox.counts(job.id)) for job in self.outbox.jobs()]
        return {
            "jobs": jobs,
            "outbox": self.outbox.counts(),
            "training": [run.to_dict() for run in reversed(self.trainer.runs())],
        }

    def get_job(self, job_id: str) -> dict[str, Any]:
        """`GET /jobs/{id}`: one job, with its latest errors."""
        job = self.outbox.job(job_id)
        if job is None:
            run = self.trainer.get(job_id)
            if run is None:
                raise HTTPError(404, "not_found", f"no job {job_id!r}")
            return {"kind": "training", **run.to_dict()}
        details = self.outbox.job_details(job_id)
        return {"kind": "predictions", **job_status(job, self.outbox.counts(job_id)), **details}

    async def webhook(self, body: object, *, authenticated: bool) -> dict[str, Any]:
        """`POST /webhook`: acknowledge at once; training happens in the background."""
        event = event_from_webhook(body)
        if not authenticated and (
            event.action == START_TRAINING or self.settings.webhook_auth == "strict"
        ):
            raise HTTPError(
                401,
                "unauthorized",
                f"{event.action} needs Basic Auth credentials",
                headers={"WWW-Authenticate": 'Basic realm="relaxml"'},
            )
        if event.action == "PROJECT_UPDATED" and event.project_id and event.label_config:
            self.projects.update_label_config(event.project_id, event.label_config)
        if event.action not in self.settings.train_on:
            return {"status": "ignored", "action": event.action}
        return self._submit(event)

    def train(self, body: object) -> dict[str, Any]:
        """`POST /train`: the legacy training call, same as `START_TRAINING`."""
        return self._submit(event_from_legacy_train(body))

    def _submit(self, event: TrainingEvent) -> dict[str, Any]:
        if not self.model.trains():
            return {
                "status": "ignored",
                "action": event.action,
                "detail": f"{self.name} does not implement fit",
            }
        run = self.trainer.submit(event)
        return {"status": "accepted", "action": event.action, "job": run.id}

    def _fit(self, event: TrainingEvent) -> str | None:
        version = self.model.fit(event)
        if version is not None and (not isinstance(version, str) or not version):
            raise ModelOutputError(
                f"{self.name}.fit must return a non-empty version string or None, got {version!r}"
            )
        return version

    def _set_version(self, version: str) -> None:
        self.model.model_version = version
        if version not in self.versions:
            self.versions.append(version)

    def list_versions(self) -> dict[str, Any]:
        """`GET /versions`: every version this process has served, oldest first."""
        return {"versions": list(self.versions), "current": self.model_version}

    def job_status(self, body: object) -> dict[str, Any]:
        """`POST /job_status`: the state of a training run."""
        job = as_mapping(body).get("job")
        if not isinstance(job, (str, int)) or isinstance(job, bool):
            raise BadRequest("missing field 'job': expected a training run id", field="job")
        run = self.trainer.get(str(job))
        if run is None:
            raise HTTPError(404, "not_found", f"no training run {job!r}")
        return {"job": run.id, "status": run.state, **run.to_dict()}

    def validate(self, body: object) -> dict[str, Any]:
        """`POST /validate`: is this label config well-formed XML?"""
        config = as_mapping(body).get("config")
        if not isinstance(config, str) or not config.strip():
            raise BadRequest(
                "missing field 'config': expected the label config XML", field="config"
            )
        try:
            ET.fromstring(config)
        except ET.ParseError as exc:
            raise BadRequest(f"the label config is not valid XML: {exc}", field="config") from None
        return {"status": "ok"}

    def delete(self, body: object) -> dict[str, Any]:
        """`POST /delete`: forget a project's state."""
        project = as_mapping(body).get("project")
        if not isinstance(project, (str, int)) or isinstance(project, bool):
            raise BadRequest("missing field 'project'", field="project")
        known = self.projects.forget(str(project))
        return {"status": "ok" if known else "unknown", "project": str(project)}

    def duplicate_model(self, body: object) -> dict[str, Any]:
        """`POST /duplicate_model`: copy a project's state to another project."""
        obj = as_mapping(body)
        source, target = obj.get("project_src"), obj.get("project_dst")
        for name, value in (("project_src", source), ("project_dst", target)):
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise BadRequest(f"missing field '{name}'", field=name)
        copied = self.projects.copy(str(source), str(target))
        return {"status": "ok" if copied else "unknown", "model_version": self.model_version}

    async def _call_user(self, fn: Any, *args: Any, what: str) -> Any:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Exception as exc:
            logger.error("%s.%s raised", self.name, what, exc_info=exc)
            raise ModelError(f"{self.name}.{what} raised {describe(exc)}") from None


def _item_of(job: Job, task: Task) -> Item:
    return Item(job.id, task.id, job.project_id, job.model_version, task.raw, None, 0, False)
