"""`create_app`: a Starlette app that serves one `LabelStudioModel` to Label Studio.

Wiring only: routes, middleware and the lifespan that constructs the model once per process.
Each route lives in `routes.py`; what it asks of the model, in `backend.py`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware

from .._datadir.layout import model_identity, prepare
from .._datadir.workers import WorkerSlots, workers_dir
from .._devices import device_for
from .._metrics import Metrics, describe_metrics
from ..errors import describe
from ..model import LabelStudioModel, check_attributes, construct
from ..settings import Settings
from . import routes
from .accesslog import AccessLogMiddleware
from .auth import BasicAuthMiddleware
from .backend import Backend
from .handlers import exception_handlers
from .predictroute import PredictRoute
from .readiness import Readiness

logger = logging.getLogger(__name__)

ModelSource = type[LabelStudioModel] | LabelStudioModel


def create_app(model: ModelSource, settings: Settings | None = None, **overrides: Any) -> Starlette:
    """Build the app for a model class (constructed once, at startup) or a ready instance.

    `settings` defaults to `Settings.from_env()`; keyword `overrides` change single options,
    e.g. `create_app(Squirrel, basic_auth_user="ls", basic_auth_pass="secret")`.
    """
    settings = (settings or Settings.from_env()).with_overrides(**overrides)
    return build_app(model, settings, workers=1)


def build_app(
    model: ModelSource,
    settings: Settings,
    *,
    workers: int,
    lead: bool = True,
    worker: str | None = None,
) -> Starlette:
    """The app of one of `workers` worker processes (`workers` > 1: each claims a slot in
    the data directory, which picks its device, and `/ready` waits for them all).

    `lead=False` makes a worker that never runs the background loops (a Ray Serve replica;
    the coordinator leads); `worker` is the id `/health` gives (default: the process id)."""
    _check_model_source(model)

    metrics = Metrics()
    describe_metrics(metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        cls = model if isinstance(model, type) else type(model)
        data_dir = await anyio.to_thread.run_sync(
            prepare, Path(settings.data_dir), model_identity(cls)
        )  # before the model loads: a DataDirError names the path
        slots = WorkerSlots(workers_dir(data_dir.path)) if workers > 1 else None
        app.state.readiness = Readiness(workers, slots)
        slot = 0 if slots is None else await anyio.to_thread.run_sync(slots.claim)
        device = await anyio.to_thread.run_sync(device_for, settings.device_list, slot)
        try:
            instance = await _construct(model, device)
        except Exception as exc:
            _failed(slots, exc)
            raise
        async with anyio.create_task_group() as task_group:
            backend = app.state.backend = Backend(
                instance,
                settings,
                task_group,
                metrics,
                data_dir=data_dir,
                lead=lead,
                worker=worker,
            )
            try:
                await backend.start()  # warms the model up
            except Exception as exc:
                _failed(slots, exc)
                raise
            await anyio.to_thread.run_sync(app.state.readiness.mark_ready)
            logger.info(
                "serving %s, model version %s, %s delivery, on %s",
                type(instance).__name__,
                instance.model_version,
                backend.delivery,
                instance.device,
            )
            try:
                yield
            finally:
                task_group.cancel_scope.cancel()
        backend.close()
        if slots is not None:
            slots.release()
        if backend.exit_code is not None:  # a background loop could not go on: be restarted
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(backend.exit_code)

    middleware = [
        Middleware(AccessLogMiddleware, metrics=metrics),  # and the shutdown's JSON 503
    ]
    if settings.basic_auth is not None:
        user, password = settings.basic_auth
        middleware.append(Middleware(BasicAuthMiddleware, user=user, password=password))
    middleware.append(Middleware(PredictRoute, settings=settings))  # behind authentication

    return Starlette(
        routes=routes.table(settings),
        middleware=middleware,
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


def _check_model_source(model: object) -> None:
    if isinstance(model, LabelStudioModel):
        check_attributes(model)
        return
    if isinstance(model, type) and issubclass(model, LabelStudioModel):
        if getattr(model, "__abstractmethods__", None):
            missing = ", ".join(sorted(model.__abstractmethods__))
            raise TypeError(f"{model.__name__} cannot be served: it does not implement {missing}")
        check_attributes(model)
        return
    raise TypeError(f"create_app() needs a LabelStudioModel subclass or instance, got {model!r}")


def _failed(slots: WorkerSlots | None, exc: Exception) -> None:
    """Tell `relaxml serve --workers N` that this worker's model failed to start."""
    if slots is not None:
        slots.record_failure(describe(exc))


async def _construct(model: ModelSource, device: str) -> LabelStudioModel:
    """The instance to serve; a class is constructed with `device` already set."""
    instance = (
        model
        if isinstance(model, LabelStudioModel)
        else await anyio.to_thread.run_sync(construct, model, device)
    )
    check_attributes(instance)  # __init__ may have set them
    return instance
