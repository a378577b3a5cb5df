"""`Backend`: the composition root of one served model, and what `/setup`, `/predict`,
`/webhook` and `/train` ask of it.

It builds every collaborator once and hands each the others it needs (the background queue,
the deliverer, the trainer, the keeper, the pools of clients and media fetchers). It speaks in
decoded JSON bodies and plain dicts; `routes.py` does the HTTP around it.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import anyio.to_thread
from anyio.abc import TaskGroup

from .._datadir.layout import DataDir, DataDirError, describe_start, model_identity, prepare
from .._datadir.leader import Follower, LeaderLock
from .._datadir.sqlite import FILENAME
from .._delivery.background import BackgroundPredictions
from .._delivery.outbox import Outbox
from .._delivery.pace import Pace
from .._delivery.worker import Deliverer
from .._metrics import Metrics, series_key
from .._oom import OUT_OF_MEMORY, is_oom_entry
from .._supervise import FATAL_EXIT_CODE, GuardedGroup, Supervisor
from .._training.instances import ProjectModels
from .._training.keeper import ModelKeeper
from .._training.store import TrainingStore
from .._training.trainer import Trainer
from .._training.versions import VersionStore
from ..context import Context
from ..errors import Failure, HTTPError, ModelError, describe
from ..events import (
    START_TRAINING,
    TrainingEvent,
    event_from_legacy_train,
    event_from_webhook,
)
from ..labelstudio._pool import ClientPool, MediaPool
from ..memo import Memo
from ..model import LabelStudioModel
from ..prediction import Entry
from ..projects import ProjectRegistry
from ..protocol import parse_predict, parse_setup
from ..settings import Settings
from .batching import MicroBatcher
from .modelcall import ModelCall
from .outputcheck import OutputCheck
from .routing import ModelRouter
from .scheduler import Scheduler, chunked

logger = logging.getLogger(__name__)

_INLINE = series_key({"mode": "inline"})  # the label set of inline requests' counters

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
        lead: bool = True,
        worker: str | None = None,
    ) -> None:
        """`data_dir`: the checked data directory (`prepare`); checked here if None. `lead`:
        whether this process may run the background loops (a Ray replica never does);
        `worker`: the id `/health` gives (default: the process id)."""
        self.settings = settings
        self.name = type(model).__name__
        self.delivery = settings.delivery or model.delivery
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
        lock = self.data_dir.path / "leader.lock"
        self.leader = LeaderLock(lock) if lead else Follower(lock)
        self.worker = worker
        self.memo = Memo(model.memo_entries, model.memo_bytes)
        self.background = BackgroundPredictions(
            settings=settings,
            delivery=self.delivery,
            outbox=self.outbox,
            projects=self.projects,
            clients=self.clients,
            run_model=lambda tasks, context: self.calls.run_stored(tasks, context),
            media=self.media,
            memo=self.memo,
            version=lambda project: self.router.version_for(project),
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
        self.router = ModelRouter(
            self.keeper, self.instances, self.projects, self.name, self._call_user
        )
        self.calls = ModelCall(
            self.router,
            self.scheduler,
            self.pace,
            self.metrics,
            OutputCheck(settings.validate, f"{self.name}.predict"),
            self.name,
        )
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
            keeper_for=self.router.keeper_for if self.per_project else None,
        )
        self.batcher = (
            MicroBatcher(
                self.calls.run,
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
            "worker": os.getpid() if self.worker is None else self.worker,
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
        key = self.router.key(project)
        keeper = await self.router.keeper_for(key, changed=project if changed else None)
        return {"model_version": keeper.model.model_version}

    async def predict(self, body: object) -> dict[str, Any]:
        """`POST /predict`: one entry per task, in order, or a background job."""
        request = parse_predict(body)
        project = self.projects.for_predict(request)
        version = (await self.router.keeper_for(self.router.key(project))).model.model_version
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
        background = self.background.decided(request)  # most often known without awaiting
        if background is None:
            background = await self.background.wanted(request, project)
        if background:
            return await self.background.enqueue(request, project, context)
        with self.scheduler.admit():
            for chunk in chunked(request.tasks, self.model.max_batch_size):
                run = self.batcher.submit if self.batcher else self.calls.run
                try:
                    results.extend(await run(list(chunk), context))
                except Failure:
                    self.metrics.inc_series("relaxml_predict_errors_total", _INLINE, len(chunk))
                    raise
        # a model's entries hold `result` (or are lists): only the others can be out of memory
        failed = [e for e in results if "result" not in e and is_oom_entry(e)]
        self.metrics.inc_series(
            "relaxml_tasks_predicted_total", _INLINE, len(results) - len(failed)
        )
        if failed:
            self.metrics.inc_series("relaxml_predict_errors_total", _INLINE, len(failed))
            if len(failed) == len(results):  # nothing to answer: the request fails as a whole
                raise HTTPError(503, OUT_OF_MEMORY, _all_failed(failed))
        return {"results": results, "model_version": version}

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
