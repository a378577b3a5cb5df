"""Every route relaxml serves, and `table`, the list that maps paths to them.

A route reads its body (`bodies.read_json`), asks the `Backend` or the stores it holds, and
answers JSON. Routes that touch SQLite run off the event loop. An unexpected error in any route
is logged in full and answered as a JSON 500 (`_guarded`); docs/routes.md describes each one.
"""

from __future__ import annotations

import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Scope

from .._delivery.reports import job_report
from ..errors import BadRequest, Failure, HTTPError, describe
from ..protocol import as_mapping, ascii_int
from ..settings import Settings
from .auth import AUTHENTICATED
from .backend import Backend
from .bodies import read_json
from .readiness import Readiness

logger = logging.getLogger(__name__)

Action = Callable[[Backend, Any, Request], Awaitable[dict[str, Any]] | dict[str, Any]]


def table(settings: Settings) -> list[Route]:
    """The routes of an app served with `settings`, in the order Starlette matches them."""

    def post(action: Action, *, webhook: bool = False) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            if webhook:
                _refuse_strict_unauthenticated(request, settings)
                body = await read_json(
                    request,
                    settings.webhook_max_body_size,
                    setting="RELAXML_WEBHOOK_MAX_BODY_SIZE",
                )
            else:
                body = await read_json(request, settings.max_body_size)
            backend = request.app.state.backend
            answer = await _guarded(request, lambda: action(backend, body, request))
            return _answer(request, answer)

        return endpoint

    def on_loop(act: Callable[[Backend, Any], Any]) -> Action:
        return lambda backend, body, request: act(backend, body)

    def in_thread(read: Callable[[Backend, Any], dict[str, Any]]) -> Action:
        return lambda backend, body, request: anyio.to_thread.run_sync(read, backend, body)

    return [  # the busiest first: Starlette tries them in order
        Route(
            "/predict",
            post(lambda backend, body, request: predict(backend, body, request.scope)),
            methods=["POST"],
        ),
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/", health, methods=["GET"]),
        Route("/versions", _off_loop(list_versions, query="project"), methods=["GET"]),
        Route("/jobs", _off_loop(list_jobs), methods=["GET"]),
        Route("/jobs/{job_id}", _off_loop(get_job), methods=["GET"]),
        Route("/jobs/{job_id}/cancel", _off_loop(cancel_job), methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/setup", post(on_loop(Backend.setup)), methods=["POST"]),
        Route("/webhook", post(webhook, webhook=True), methods=["POST"]),
        Route("/train", post(on_loop(Backend.train)), methods=["POST"]),
        Route("/job_status", post(in_thread(job_status)), methods=["POST"]),
        Route("/validate", post(on_loop(validate)), methods=["POST"]),
        Route("/delete", post(on_loop(delete)), methods=["POST"]),
        Route("/duplicate_model", post(on_loop(duplicate_model)), methods=["POST"]),
    ]


# --- the model ---------------------------------------------------------------------------


async def health(request: Request) -> Response:
    """`GET /health` (and `GET /`): 200 while UP, 503 once a background loop is DOWN."""
    backend: Backend = request.app.state.backend
    answer = backend.health()
    return JSONResponse(answer, status_code=200 if answer["status"] == "UP" else 503)


async def ready(request: Request) -> Response:
    """`GET /ready`: 200 once every worker has loaded and warmed up its model, else 503."""
    backend: Backend = request.app.state.backend
    readiness: Readiness = request.app.state.readiness
    count = await anyio.to_thread.run_sync(readiness.count)
    down = backend.health().get("reason")
    status = "DOWN" if down else "READY" if count >= readiness.workers else "STARTING"
    answer = {
        "status": status,
        "workers": readiness.workers,
        "ready": min(count, readiness.workers),
    }
    if down:
        answer["reason"] = down
    return JSONResponse(answer, status_code=200 if status == "READY" else 503)


async def predict(backend: Backend, body: Any, scope: Scope) -> dict[str, Any]:
    """`POST /predict`: predictions for the tasks, or a background job (answered by
    `predictroute.PredictRoute`; the routed endpoint serves a path under a `root_path`)."""
    tasks = body.get("tasks") if isinstance(body, dict) else None
    if isinstance(tasks, list):
        plural = "" if len(tasks) == 1 else "s"
        scope["relaxml.note"] = f"{len(tasks)} task{plural}"
    return await backend.predict(body)


async def webhook(backend: Backend, body: Any, request: Request) -> dict[str, Any]:
    """`POST /webhook`: a Label Studio event, queued for training."""
    if isinstance(body, dict) and isinstance(body.get("action"), str):
        request.scope["relaxml.note"] = body["action"][:40]
    return await backend.webhook(body, authenticated=request.scope.get(AUTHENTICATED, True))


async def metrics(request: Request) -> Response:
    """`GET /metrics`: Prometheus text."""
    backend: Backend = request.app.state.backend
    text = await anyio.to_thread.run_sync(backend.metrics.render)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


# --- jobs and versions (SQLite: called in a worker thread) --------------------------------


def list_jobs(backend: Backend) -> dict[str, Any]:
    """`GET /jobs`: background prediction jobs and training runs, newest first."""
    outbox = backend.outbox
    return {
        "jobs": [job_report(job, outbox.counts(job.id)) for job in outbox.jobs()],
        "outbox": outbox.counts(),
        "training": backend.trainer.describe_runs(),
    }


def get_job(backend: Backend, job_id: str) -> dict[str, Any]:
    """`GET /jobs/{job_id}`: a prediction job with its latest errors, or a training run."""
    if not _possible(job_id):
        raise HTTPError(404, "not_found", f"no job {job_id[:100]!r}")
    job = backend.outbox.job(job_id)
    if job is not None:
        counts = backend.outbox.counts(job_id)
        return {
            "kind": "predictions",
            **job_report(job, counts),
            **backend.outbox.job_details(job_id),
        }
    run = backend.trainer.lookup(job_id)
    if run is None:
        raise HTTPError(404, "not_found", f"no job {job_id!r}")
    return {"kind": "training", **run}


def cancel_job(backend: Backend, job_id: str) -> dict[str, Any]:
    """`POST /jobs/{job_id}/cancel`: stop a prediction job or a training run."""
    if not _possible(job_id):
        raise HTTPError(404, "not_found", f"no job {job_id[:100]!r} to cancel")
    if backend.outbox.job(job_id) is not None:
        cancelled = backend.outbox.cancel(job_id)
        return {"job": job_id, "status": "cancelled", "cancelled": cancelled}
    record = backend.trainer.cancel(job_id)
    if record is None:
        raise HTTPError(404, "not_found", f"no job {job_id!r} to cancel")
    status = "cancelling" if record.state == "running" else record.state
    return {"job": job_id, "status": status}


def job_status(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /job_status`: Label Studio's shape, `{"job": id}` in, the job's state out."""
    job = as_mapping(body).get("job")
    if not isinstance(job, (str, int)) or isinstance(job, bool):
        raise BadRequest("missing field 'job': expected a job id", field="job")
    found = get_job(backend, str(job))
    return {"job": str(job), "status": found["state"], **found}


def list_versions(backend: Backend, project: str | None = None) -> dict[str, Any]:
    """`GET /versions`: every version of this data directory, oldest first, and the current;
    `?project=N`: project N's, for a per-project model (the same for every project otherwise).
    A per-project model without `project` also lists each project's current version."""
    if project is not None and (ascii_int(project) is None):
        raise BadRequest(f"project must be a project id, got {project!r}", field="project")
    if backend.per_project and project is not None:
        store = backend.versions.for_project(str(ascii_int(project)))
        current = store.current()
    else:
        store, current = backend.versions, backend.model_version
    history = store.history()
    answer: dict[str, Any] = {
        "versions": [v.version for v in history],
        "current": current,
        "history": [v.to_dict() for v in history],
    }
    if backend.per_project and project is None:
        answer["projects"] = {
            key: backend.versions.for_project(key).current() for key in backend.versions.projects()
        }
    return answer


def _possible(job_id: str) -> bool:
    """False for an id no job can have: `run-N`/`event-N` with N not a 64-bit ASCII number."""
    kind, dash, number = job_id.partition("-")
    return not dash or kind not in ("run", "event") or ascii_int(number) is not None


# --- routes Label Studio defines but 1.23 never calls: sensible JSON, not a 404 -----------


def validate(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /validate`: is this label config well-formed XML?"""
    config = as_mapping(body).get("config")
    if not isinstance(config, str) or not config.strip():
        raise BadRequest("missing field 'config': expected the label config XML", field="config")
    try:
        ET.fromstring(config)
    except ET.ParseError as exc:
        raise BadRequest(f"the label config is not valid XML: {exc}", field="config") from None
    return {"status": "ok"}


def delete(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /delete`: forget a project's state."""
    project = as_mapping(body).get("project")
    if not isinstance(project, (str, int)) or isinstance(project, bool):
        raise BadRequest("missing field 'project'", field="project")
    known = backend.projects.forget(str(project))
    return {"status": "ok" if known else "unknown", "project": str(project)}


def duplicate_model(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /duplicate_model`: copy a project's state to another project."""
    obj = as_mapping(body)
    source, target = obj.get("project_src"), obj.get("project_dst")
    for name, value in (("project_src", source), ("project_dst", target)):
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise BadRequest(f"missing field '{name}'", field=name)
    copied = backend.projects.copy(str(source), str(target))
    return {"status": "ok" if copied else "unknown", "model_version": backend.model_version}


# --- the HTTP around the actions ----------------------------------------------------------


def _off_loop(
    read: Callable[..., dict[str, Any]], *, query: str | None = None
) -> Callable[[Request], Awaitable[Response]]:
    """A route without a body that reads SQLite, so runs in a worker thread: `read(backend)`,
    or `read(backend, job_id)` for a route with a `{job_id}`, with the value of the `query`
    parameter last (None when absent)."""

    async def endpoint(request: Request) -> Response:
        backend = request.app.state.backend
        extra = (request.query_params.get(query),) if query else ()
        args = (backend, *request.path_params.values(), *extra)
        answer = await _guarded(request, lambda: anyio.to_thread.run_sync(read, *args))
        return JSONResponse(answer)

    return endpoint


async def _guarded(
    request: Request, call: Callable[[], Awaitable[dict[str, Any]] | dict[str, Any]]
) -> dict[str, Any]:
    """A route's answer; a relaxml bug is logged in full and answered as a JSON 500 (the
    server keeps serving, and no traceback reaches the wire or uvicorn's log)."""
    try:
        answer = call()
        return answer if isinstance(answer, dict) else await answer
    except Failure:
        raise
    except Exception as exc:
        raise unexpected(request.url.path, exc) from None


def unexpected(path: str, exc: Exception) -> HTTPError:
    """A relaxml bug on `path`, logged in full; the short JSON 500 to answer instead."""
    logger.error("error on %s", path, exc_info=exc)
    return HTTPError(500, "internal_error", describe(exc))


def _answer(request: Request, answer: dict[str, Any]) -> Response:
    """`answer` as a JSON response (`render`)."""
    return Response(render(answer, request.app.state.backend), media_type="application/json")


def render(answer: dict[str, Any], backend: Backend) -> bytes:
    """`answer` encoded as `JSONResponse` encodes it. Predictions JSON cannot hold (NumPy
    numbers, NaN, bytes) are checked only when encoding fails: converted, or refused as the
    model's error."""
    try:
        return _encode(answer)
    except (TypeError, ValueError, RecursionError):
        results = answer.get("results")
        if not isinstance(results, list):
            raise
        return _encode({**answer, "results": backend.calls.json_safe(results)})


_dumps = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
).encode


def _encode(value: object) -> bytes:
    return _dumps(value).encode("utf-8")


def _refuse_strict_unauthenticated(request: Request, settings: Settings) -> None:
    """In `strict` webhook mode, refuse a `/webhook` without credentials before reading it."""
    if settings.webhook_auth == "strict" and not request.scope.get(AUTHENTICATED, True):
        raise HTTPError(
            401,
            "unauthorized",
            "/webhook needs Basic Auth credentials (RELAXML_WEBHOOK_AUTH=strict)",
            headers={"WWW-Authenticate": 'Basic realm="relaxml"'},
        )
