"""`Backend`: what each route does, with the model, the projects, the scheduler and the trainer.

It speaks in decoded JSON bodies and plain dicts; `app.py` does the HTTP around it.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from typing import Any

import anyio.to_thread
from anyio.abc import TaskGroup

from .context import Context
from .errors import BadRequest, HTTPError, ModelError, ModelOutputError, describe
from .events import START_TRAINING, TrainingEvent, event_from_legacy_train, event_from_webhook
from .model import LabelStudioModel
from .prediction import Entry, normalize
from .projects import ProjectRegistry
from .protocol import as_mapping, parse_predict, parse_setup
from .scheduler import Scheduler, chunked
from .settings import Settings
from .training import Trainer

logger = logging.getLogger("relaxml")

_SECRET_PARAMS = frozenset({"login", "password"})


class Backend:
    """One served model and its state. Built in the app's lifespan, inside the event loop."""

    def __init__(self, model: LabelStudioModel, settings: Settings, task_group: TaskGroup) -> None:
        self.model = model
        self.settings = settings
        self.name = type(model).__name__
        self.projects = ProjectRegistry()
        self.scheduler = Scheduler(
            max_concurrency=settings.max_concurrency, max_queue=settings.max_queue
        )
        self.trainer = Trainer(self._fit, task_group, on_version=self._set_version)
        self.versions: list[str] = [self.model_version]

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
        """`POST /predict`: one entry per task, in order."""
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
        async with self.scheduler.admit():
            for chunk in chunked(request.tasks, self.model.max_batch_size):
                version = self.model_version
                output = await self._predict_chunk(list(chunk), context)
                results.extend(
                    normalize(
                        output, len(chunk), model_version=version, source=f"{self.name}.predict"
                    )
                )
        return {"results": results, "model_version": self.model_version}

    async def _predict_chunk(self, tasks: list[Any], context: Context) -> object:
        try:
            if self.model.predicts_async():
                return await self.scheduler.run_async(self.model.predict, tasks, context)
            return await self.scheduler.run_sync(self.model.predict, tasks, context)
        except HTTPError:
            raise
        except Exception as exc:
            logger.error("%s.predict raised on %d tasks", self.name, len(tasks), exc_info=exc)
            raise ModelError(f"{self.name}.predict raised {describe(exc)}") from None

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
