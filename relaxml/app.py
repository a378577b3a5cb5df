"""`create_app`: a Starlette app that serves one `LabelStudioModel` to Label Studio.

Wiring only: routes, middleware and the lifespan that constructs the model once per process.
What each route does lives in `backend.py`.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from . import housekeeping, reports
from .auth import AUTHENTICATED, BasicAuthMiddleware
from .backend import Backend
from .bodies import read_json
from .datadir import model_identity, prepare
from .errors import HTTPError, describe
from .handlers import exception_handlers
from .logs import AccessLogMiddleware
from .metrics import Metrics, describe_metrics
from .model import LabelStudioModel, check_attributes
from .settings import Settings
from .shutdown import ShutdownMiddleware

logger = logging.getLogger("relaxml")

ModelSource = type[LabelStudioModel] | LabelStudioModel


def create_app(model: ModelSource, settings: Settings | None = None, **overrides: Any) -> Starlette:
    """Build the app for a model class (constructed once, at startup) or a ready instance.

    `settings` defaults to `Settings.from_env()`; keyword `overrides` change single options,
    e.g. `create_app(Squirrel, basic_auth_user="ls", basic_auth_pass="secret")`.
    """
    _check_model_source(model)
    settings = (settings or Settings.from_env()).with_overrides(**overrides)

    metrics = Metrics()
    describe_metrics(metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        cls = model if isinstance(model, type) else type(model)
        data_dir = await anyio.to_thread.run_sync(
            prepare, Path(settings.data_dir), model_identity(cls)
        )  # before the model loads: a DataDirError names the path
        instance = await _construct(model)
        async with anyio.create_task_group() as task_group:
            backend = app.state.backend = Backend(
                instance, settings, task_group, metrics, data_dir=data_dir
            )
            await backend.start()
            logger.info(
                "serving %s, model version %s, %s delivery",
                type(instance).__name__,
                instance.model_version,
                backend.delivery,
            )
            try:
                yield
            finally:
                task_group.cancel_scope.cancel()
        backend.close()
        if backend.exit_code is not None:  # a background loop could not go on: be restarted
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(backend.exit_code)

    middleware = [
        Middleware(AccessLogMiddleware, metrics=metrics),
        Middleware(ShutdownMiddleware),
    ]
    if settings.basic_auth is not None:
        user, password = settings.basic_auth
        middleware.append(Middleware(BasicAuthMiddleware, user=user, password=password))

    limit = settings.max_body_size

    def get(
        action: Callable[[Backend], dict[str, Any]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:  # reads SQLite: off the event loop
            backend = request.app.state.backend
            answer = await _guarded(request, lambda: anyio.to_thread.run_sync(action, backend))
            return JSONResponse(answer)

        return endpoint

    def post(
        action: Callable[[Backend, Any, Request], Awaitable[dict[str, Any]] | dict[str, Any]],
        *,
        webhook: bool = False,
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if webhook:
                _refuse_strict_unauthenticated(request, settings)
                body = await read_json(
                    request,
                    settings.webhook_max_body_size,
                    setting="RELAXML_WEBHOOK_MAX_BODY_SIZE",
                )
            else:
                body = await read_json(request, limit)
            backend = request.app.state.backend
            answer = await _guarded(request, lambda: action(backend, body, request))
            return _answer(request, answer)

        return endpoint

    routes = [
        Route("/", _health, methods=["GET"]),
        Route("/health", _health, methods=["GET"]),
        Route("/versions", get(reports.list_versions), methods=["GET"]),
        Route("/jobs", get(reports.list_jobs), methods=["GET"]),
        Route("/jobs/{job_id}", _job, methods=["GET"]),
        Route("/jobs/{job_id}/cancel", _cancel, methods=["POST"]),
        Route("/metrics", _metrics, methods=["GET"]),
        Route("/setup", post(lambda b, body, r: b.setup(body)), methods=["POST"]),
        Route("/predict", post(_predict), methods=["POST"]),
        Route("/webhook", post(_webhook, webhook=True), methods=["POST"]),
        Route("/train", post(lambda b, body, r: b.train(body)), methods=["POST"]),
        Route(
            "/job_status",
            post(lambda b, body, r: anyio.to_thread.run_sync(reports.job_status, b, body)),
            methods=["POST"],
        ),
        Route(
            "/validate", post(lambda b, body, r: housekeeping.validate(b, body)), methods=["POST"]
        ),
        Route("/delete", post(lambda b, body, r: housekeeping.delete(b, body)), methods=["POST"]),
        Route(
            "/duplicate_model",
            post(lambda b, body, r: housekeeping.duplicate_model(b, body)),
            methods=["POST"],
        ),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=exception_handlers(),
        lifespan=lifespan,
    )


async def _guarded(
    request: Request, call: Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]
) -> dict[str, Any]:
    """A route's answer; a relaxml bug is logged in full and answered as a JSON 500 (the
    server keeps serving, and no traceback reaches the wire or uvicorn's log)."""
    try:
        answer = call()
        return answer if isinstance(answer, dict) else await answer
    except HTTPError:
        raise
    except Exception as exc:
        logger.error("error on %s", request.url.path, exc_info=exc)
        raise HTTPError(500, "internal_error", describe(exc)) from None


def _answer(request: Request, answer: dict[str, Any]) -> Response:
    """`answer` as JSON. Predictions JSON cannot hold (NumPy numbers, NaN, bytes) are checked
    only when serializing fails: converted, or refused as the model's error."""
    try:
        return JSONResponse(answer)
    except (TypeError, ValueError, RecursionError):
        results = answer.get("results")
        if not isinstance(results, list):
            raise
        backend: Backend = request.app.state.backend
        return JSONResponse({**answer, "results": backend.json_safe(results)})


async def _health(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    answer = backend.health()
    return JSONResponse(answer, status_code=200 if answer["status"] == "UP" else 503)


async def _job(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    job_id = request.path_params["job_id"]
    return JSONResponse(await anyio.to_thread.run_sync(reports.get_job, backend, job_id))


async def _cancel(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    job_id = request.path_params["job_id"]
    return JSONResponse(await anyio.to_thread.run_sync(reports.cancel_job, backend, job_id))


async def _metrics(request: Request) -> Response:
    backend: Backend = request.app.state.backend
    text = await anyio.to_thread.run_sync(backend.metrics.render)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def _predict(backend: Backend, body: Any, request: Request) -> dict[str, Any]:
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if isinstance(tasks, list):
        plural = "" if len(tasks) == 1 else "s"
        request.scope["relaxml.note"] = f"{len(tasks)} task{plural}"
    return await backend.predict(body)


async def _webhook(backend: Backend, body: Any, request: Request) -> dict[str, Any]:
    if isinstance(body, dict) and isinstance(body.get("action"), str):
        request.scope["relaxml.note"] = body["action"][:40]
    return await backend.webhook(body, authenticated=request.scope.get(AUTHENTICATED, True))


def _refuse_strict_unauthenticated(request: Request, settings: Settings) -> None:
    """In `strict` webhook mode, refuse a `/webhook` without credentials before reading it."""
    if settings.webhook_auth == "strict" and not request.scope.get(AUTHENTICATED, True):
        raise HTTPError(
            401,
            "unauthorized",
            "/webhook needs Basic Auth credentials (RELAXML_WEBHOOK_AUTH=strict)",
            headers={"WWW-Authenticate": 'Basic realm="relaxml"'},
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


async def _construct(model: ModelSource) -> LabelStudioModel:
    instance = (
        model if isinstance(model, LabelStudioModel) else await anyio.to_thread.run_sync(model)
    )
    check_attributes(instance)  # __init__ may have set them
    return instance
