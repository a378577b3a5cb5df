"""`Backend`: the composition root of one served model, and what `/setup`, `/predict`,
`/webhook` and `/train` ask of it.

It builds every collaborator once and hands each the others it needs (the background queue,
the deliverer, the trainer, the keeper, the pools of clients and media fetchers). It speaks in
decoded JSON bodies and plain dicts; `routes.py` does the HTTP around it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
from anyio.abc import TaskGroup

from .._datadir.layout import DataDir, DataDirError, describe_start, model_identity, prepare
from .._datadir.leader import LeaderLock
from .._datadir.sqlite import FILENAME
from .._delivery.background import BackgroundPredictions
from .._delivery.outbox import Outbox
from .._delivery.pace import Pace
from .._delivery.worker import Deliverer
from .._metrics import Metrics
from .._oom import OUT_OF_MEMORY, is_oom_entry, split_on_oom
from .._supervise import FATAL_EXIT_CODE, GuardedGroup, Supervisor
from .._throttle import LogThrottle
from .._training.instances import ProjectModels
from .._training.keeper import ModelKeeper
from .._training.store import TrainingStore
from .._training.trainer import Trainer
from .._training.versions import ALL_PROJECTS, VersionStore
from ..context import Context
from ..errors import Failure, HTTPError, ModelError, ModelOutputError, describe
from ..events import (
    START_TRAINING,
    TrainingEvent,
    event_from_legacy_train,
    event_from_webhook,
)
from ..labelstudio._pool import ClientPool, MediaPool
from ..memo import Memo
from ..model import LabelStudioModel
from ..prediction import Entry, json_safe, normalize
from ..projects import Project, ProjectRegistry
from ..protocol import Task, parse_predict, parse_setup
from ..settings import Settings
from .batching import MicroBatcher
from .outputcheck import OutputCheck
from .scheduler import Scheduler, chunked

logger = logging.getLogger(__name__)

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
        *,
        data_dir: DataDir | None = None,
    ) -> None:
        """`data_dir`: the checked data directory (`prepare`); checked here if None."""
        self.settings = settings
        self.name = type(model).__name__
        self.delivery = settings.delivery or model.delivery
        self.output_check = OutputCheck(settings.validate, f"{self.name}.predict")
        self._output_log = LogThrottle()
        self._task_group = task_group
        self.metrics = metrics or Metrics()
        self.projects = ProjectRegistry(max_projects=settings.max_projects)
        self.scheduler = Scheduler(
            max_concurrency=settings.max_concurrency, max_queue=settings.max_queue
        )
        self.supervisor = Supervisor(on_fatal=self._on_fatal)
        self.exit_code: int | None = None
        self.data_dir = data_dir or prepare(Path(settings.data_dir), model_identity(type(model)))
        database = self.data_dir.path / FILENAME
        try:
            self.outbox = Outbox(database)
            self.training_store = TrainingStore(
                database,
                max_events=settings.max_queued_events,
                max_bytes=settings.max_queued_event_bytes,
            )
            self.versions = VersionStore(database)
        except sqlite3.DatabaseError as exc:
            raise DataDirError(f"database {database} cannot be used ({exc})") from None
        self.clients = ClientPool(settings.label_studio_url, settings.label_studio_api_key)
        root = settings.local_files_root
        self.media = MediaPool(
            self.clients,
            Path(settings.data_dir) / "media",
            max_bytes=settings.media_max_bytes,
            cache_bytes=settings.media_cache_bytes,
            local_files_root=Path(root) if root else None,
            deadline=settings.media_deadline,
        )
        self.leader = LeaderLock(self.data_dir.path / "leader.lock")
        self.memo = Memo(model.memo_entries, model.memo_bytes)
        self.background = BackgroundPredictions(
            settings=settings,
            delivery=self.delivery,
            outbox=self.outbox,
            projects=self.projects,
            clients=self.clients,
            run_model=self._run_stored,
            media=self.media,
            memo=self.memo,
            version=self.version_for,
            name=self.name,
        )
        self.keeper = ModelKeeper(model, self.versions, self.data_dir.path, adopt=self._adopt)
        self.per_project = type(model).per_project
        self.instances = (
            ProjectModels(
                type(model),
                model.device,
                self.versions,
                self.data_dir.path,
                max_loaded=settings.max_loaded_models,
                adopt=self._adopt,
                metrics=self.metrics,
            )
            if self.per_project
            else None
        )
        self.pace = Pace()
        self.deliverer = Deliverer(
            self.background,
            self.leader,
            pace=self.pace,
            metrics=self.metrics,
            batch_size=model.max_batch_size or 32,
            send_size=settings.delivery_batch,
            hold=settings.delivery_hold,
            supervisor=self.supervisor,
        )
        self.trainer = Trainer(
            self.training_store,
            self.leader,
            keeper=self.keeper,
            clients=self.clients,
            projects=self.projects,
            metrics=self.metrics,
            media=self.media,
            train_every=settings.train_every,
            supervisor=self.supervisor,
            keeper_for=self._keeper_for if self.per_project else None,
        )
        self.batcher = (
            MicroBatcher(
                self._run_model,
                GuardedGroup(task_group, self.supervisor, "micro-batch"),
                max_size=model.max_batch_size or DEFAULT_MERGE_SIZE,
                timeout=model.batch_timeout,
                slots=settings.max_concurrency,
            )
            if model.batch_timeout
            else None
        )
        self.metrics.collector(self._gauges)

    async def start(self) -> None:
        """Load the data directory's current version, warm the model up, then start the
        background loops. A `warmup` that raises fails the start, logged in one line."""
        logger.info(describe_start(self.data_dir))
        await self.keeper.start()
        try:
            await anyio.to_thread.run_sync(self.model.warmup)
        except Exception as exc:
            logger.error("%s.warmup() failed: %s", self.name, describe(exc))
            raise
        # Lead now if no other worker does, so that the first worker to start is the leader.
        await anyio.to_thread.run_sync(self.leader.try_acquire)
        guarded = GuardedGroup(self._task_group, self.supervisor, "background", forever=True)
        guarded.start_soon(self.deliverer.run)
        guarded.start_soon(self.trainer.run)
        watcher = self.instances or self.keeper
        guarded.start_soon(watcher.watch, self.settings.version_poll, self.supervisor)

    def _on_fatal(self, reason: str) -> None:
        if not self.settings.exit_on_fatal or self.exit_code is not None:
            return
        self.exit_code = FATAL_EXIT_CODE
        logger.critical("stopping so that a supervisor restarts the process (exit status %d)",
                        FATAL_EXIT_CODE)  # fmt: skip
        signal.raise_signal(signal.SIGTERM)  # the server's graceful shutdown

    @property
    def model(self) -> LabelStudioModel:
        """The model instance serving now (it changes on a version swap)."""
        return self.keeper.model

    def project_key(self, project: Project | None) -> str:
        """The key of a project's model instance and versions: its numeric id for a
        per-project model (`unknown` without one), `*` otherwise."""
        if not self.per_project:
            return ALL_PROJECTS
        return str(project.id) if project is not None and project.id is not None else "unknown"

    def version_for(self, project: Project) -> str:
        """The version serving `project` now: its resident instance's for a per-project model
        (the class's version when none is resident), the model's otherwise. Any thread."""
        keeper = self.instances.peek(self.project_key(project)) if self.instances else None
        return (keeper or self.keeper).model.model_version

    async def _keeper_for(self, key: str, *, changed: Project | None = None) -> ModelKeeper:
        """The keeper of the instance that serves and trains project `key`. A per-project
        instance gets `setup(project)` once the project is known, again when it is a new
        instance (built, or swapped in for a new version), and when `/setup` `changed` it."""
        if self.instances is None or key == ALL_PROJECTS:
            return self.keeper
        try:
            keeper, _ = await self.instances.get(key)
        except Exception as exc:
            logger.error("building %s for project %s failed", self.name, key, exc_info=exc)
            raise ModelError(
                f"building {self.name} for project {key} raised {describe(exc)}"
            ) from None
        model = keeper.model
        project = changed or (self.projects.by_id(int(key)) if key.isdigit() else None)
        if project is not None and (changed is not None or keeper.set_up is not model):
            keeper.set_up = model
            await self._call_user(model.setup, project, what="setup")
        return keeper

    def _adopt(self, model: LabelStudioModel) -> None:
        """`model` starts serving a version (a new instance, or a new version of this one)."""
        model._relaxml_sender = self.background.send
        self.memo.clear()  # nothing an older version computed reaches this one

    def _gauges(self) -> list[tuple[str, str, str, tuple[tuple[str, str], ...], float]]:
        outbox = self.outbox.counts()
        return [
            *(
                ("relaxml_outbox_items", "gauge", "Background items by state", (("state", k),), v)
                for k, v in outbox.items()
            ),
            ("relaxml_training_queued_events", "gauge", "Training events waiting for a run", (),
             sum(self.training_store.pending().values())),
            ("relaxml_model_info", "gauge", "The served model and its version",
             (("model", self.name), ("version", self.model_version)), 1),
            *(
                (("relaxml_resident_models", "gauge", "Per-project model instances resident",
                  (), len(self.instances)),)
                if self.instances is not None else ()
            ),
        ]  # fmt: skip

    def close(self) -> None:
        """Release the databases, the leader lock and the API clients."""
        self.scheduler.close()
        self.leader.release()
        self.outbox.close()
        self.training_store.close()
        self.versions.close()
        self.media.close()
        self.clients.close()

    @property
    def model_version(self) -> str:
        """The model's current version string."""
        return self.model.model_version

    def health(self) -> dict[str, Any]:
        """`GET /health`: instant, never waits for the model. DOWN (with a `reason`) once a
        background loop could not go on; `routes.health` answers it with 503."""
        down = self.supervisor.reason
        return {
            "status": "UP" if down is None else "DOWN",
            **({} if down is None else {"reason": down}),
            "v2": True,
            "model_class": self.name,
            "model_version": self.model_version,
            "worker": os.getpid(),
            "device": str(self.model.device),  # a torch.device the model assigned, too
        }

    async def setup(self, body: object) -> dict[str, Any]:
        """`POST /setup`: remember the project; run the model's `setup` hook if it changed."""
        request = parse_setup(body)
        project, changed = self.projects.update_from_setup(request)
        if self.instances is None:
            if changed:
                await self._call_user(self.model.setup, project, what="setup")
            return {"model_version": self.model_version}
        key = self.project_key(project)
        keeper = await self._keeper_for(key, changed=project if changed else None)
        return {"model_version": keeper.model.model_version}

    async def predict(self, body: object) -> dict[str, Any]:
        """`POST /predict`: one entry per task, in order, or a background job."""
        request = parse_predict(body)
        project = self.projects.for_predict(request)
        version = (await self._keeper_for(self.project_key(project))).model.model_version
        context = Context(
            project=project,
            label_config=request.label_config or project.label_config,
            interactive=request.context,
            params={k: v for k, v in request.params.items() if k not in _SECRET_PARAMS},
            media=self.media.get(project.hostname, project.access_token),
            memo=self.memo,
        )
        results: list[Entry] = []
        if not request.tasks:
            return {"results": results, "model_version": version}
        if await self.background.wanted(request, project):
            return await self.background.enqueue(request, project, context)
        with self.scheduler.admit():
            for chunk in chunked(request.tasks, self.model.max_batch_size):
                run = self.batcher.submit if self.batcher else self._run_model
                try:
                    results.extend(await run(list(chunk), context))
                except Failure:
                    self.metrics.inc("relaxml_predict_errors_total", len(chunk), mode="inline")
                    raise
        failed = [entry for entry in results if is_oom_entry(entry)]
        self.metrics.inc("relaxml_tasks_predicted_total", len(results) - len(failed), mode="inline")
        if failed:
            self.metrics.inc("relaxml_predict_errors_total", len(failed), mode="inline")
            if len(failed) == len(results):  # nothing to answer: the request fails as a whole
                raise HTTPError(503, OUT_OF_MEMORY, _all_failed(failed))
        return {"results": results, "model_version": version}

    async def _run_model(
        self, tasks: list[Task], context: Context, *, mode: str = "inline"
    ) -> list[Entry]:
        """`predict` on `tasks` through the scheduler, its output normalized and checked; a
        call that runs out of memory is split in halves (`_oom.split_on_oom`), and a task that
        runs out of memory alone gets an `out_of_memory` entry."""
        key = self.project_key(context.project)
        keeper = await self._keeper_for(key)
        model, version = keeper.model, keeper.model.model_version
        if keeper.memo is not None and context.memo is not keeper.memo:
            context = dataclasses.replace(context, memo=keeper.memo)
        interactive = context.is_interactive
        if interactive:
            self.pace.note_interactive()
        source = f"{self.name}.predict"

        async def call(batch: list[Task]) -> list[Entry]:
            if model.predicts_async():
                output = await self.scheduler.run_async(model.predict, batch, context)
            else:
                output = await self.scheduler.run_sync(
                    self._timed, model, batch, context, urgent=interactive
                )
            return normalize(
                output,
                len(batch),
                model_version=version,
                source=source,
                check_json=False,  # the answer is checked when it is serialized
            )

        try:
            entries = await split_on_oom(
                call,
                tasks,
                oom_errors=model.oom_errors,
                source=source,
                metrics=self.metrics,
                mode=mode,
            )
        except ModelOutputError as error:
            raise self._refused(error) from None
        except Failure:
            raise
        except Exception as exc:
            logger.error("%s.predict raised on %d tasks", self.name, len(tasks), exc_info=exc)
            raise ModelError(f"{self.name}.predict raised {describe(exc)}") from None
        if key != ALL_PROJECTS:
            self.metrics.inc("relaxml_project_predictions_total", len(tasks), project=key)
        try:
            if context.label_config:
                kept = [i for i, entry in enumerate(entries) if not is_oom_entry(entry)]
                self.output_check(
                    [tasks[i] for i in kept] if len(kept) < len(tasks) else tasks,
                    [entries[i] for i in kept] if len(kept) < len(tasks) else entries,
                    context.label_config,
                )
        except ModelOutputError as error:
            raise self._refused(error) from None
        return entries

    def _timed(self, model: LabelStudioModel, tasks: list[Task], context: Context) -> Any:
        """`model.predict` in a model thread, its time per task noted for the pace of
        background batches."""
        started = time.perf_counter()
        try:
            return model.predict(tasks, context)
        finally:
            self.pace.record(len(tasks), time.perf_counter() - started)

    async def _run_stored(self, tasks: list[Task], context: Context) -> list[Entry]:
        """`_run_model` for background predictions, stored as JSON before they are sent."""
        return self.json_safe(await self._run_model(tasks, context, mode="background"))

    def json_safe(self, entries: list[Entry]) -> list[Entry]:
        """`prediction.json_safe` for this model's entries; a refusal is logged."""
        try:
            return json_safe(entries, f"{self.name}.predict")
        except ModelOutputError as error:
            raise self._refused(error) from None

    def _refused(self, error: ModelOutputError) -> ModelOutputError:
        """Log why the model's output was refused (the text of the answer), at most once a
        minute per kind of mistake; return `error` to raise."""
        kind = " ".join(re.sub(r"\d+", "", error.detail).split()[:6])
        if self._output_log.allow(kind):
            logger.error("%s (logged once a minute for this kind of mistake)", error.detail)
        return error

    async def webhook(self, body: object, *, authenticated: bool) -> dict[str, Any]:
        """`POST /webhook`: acknowledge at once; training happens in the background."""
        event = event_from_webhook(body, authenticated=authenticated)
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
            if authenticated:  # a caller without credentials must not rewrite the config
                self.projects.update_label_config(event.project_id, event.label_config)
            else:
                logger.info(
                    "PROJECT_UPDATED without credentials: label config of project %d not taken",
                    event.project_id,
                )
        if event.action not in self.settings.train_on:
            return {"status": "ignored", "action": event.action}
        return await self._submit(event)

    async def train(self, body: object) -> dict[str, Any]:
        """`POST /train`: the legacy training call, same as `START_TRAINING`."""
        return await self._submit(event_from_legacy_train(body))

    async def _submit(self, event: TrainingEvent) -> dict[str, Any]:
        if not self.model.trains():
            return {
                "status": "ignored",
                "action": event.action,
                "detail": f"{self.name} does not implement fit",
            }
        job = await anyio.to_thread.run_sync(self.trainer.submit, event)
        self.trainer.wakeup.set()
        return {"status": "accepted", "action": event.action, "job": job}

    async def _call_user(self, fn: Any, *args: Any, what: str) -> Any:
        try:
            return await anyio.to_thread.run_sync(fn, *args)
        except Exception as exc:
            logger.error("%s.%s raised", self.name, what, exc_info=exc)
            raise ModelError(f"{self.name}.{what} raised {describe(exc)}") from None


def _all_failed(failed: list[dict[str, Any]]) -> str:
    """The detail of a request whose every task ran out of memory alone."""
    if len(failed) == 1:
        return str(failed[0]["detail"])
    return f"{failed[0]['detail']} (and each of the other {len(failed) - 1} tasks too)"
