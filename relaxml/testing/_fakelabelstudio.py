"""`FakeLabelStudio`: the part of Label Studio's REST API an ML backend calls, on 127.0.0.1.

Real HTTP in a thread of the test's process, so relaxml's client, media fetcher and deliverer
talk to it exactly as they talk to Label Studio 1.23: the same paths, auth schemes, answers and
status codes (the contract relaxml's own end-to-end tests hold against a real Label Studio).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Any

from . import _fakeml
from ._fakehttp import handler_for


class FakeLabelStudio:
    """A Label Studio stand-in for tests: projects, tasks, annotations, uploads, local files,
    predictions, ML backends and their event webhooks, and both kinds of key, with failures on
    demand.

    `api_key` is what the backend gets as `LABEL_STUDIO_API_KEY`: a legacy token by default (or
    the one given), or a personal access token (a JWT refresh token, exchanged at
    `/api/token/refresh/` for 5-minute access tokens) with `personal_access_token=True`. With
    `accept_unknown_tasks`, projects and tasks it is asked about or sent predictions for are
    made on first sight (for load tests that send made-up ids; Label Studio answers 404 and
    400). Every request is recorded in `requests` as `(method, path)`, and in `queries` as
    `(method, path, query)`; a task page (`GET /api/tasks`) holds each task's `annotations` and
    `predictions` only with `fields=all`, and `GET /api/predictions/` is not paged, as in Label
    Studio; the predictions stored, by the bulk import or one by one, are in `predictions`. Use
    it as a context manager, or call `close()`.

    `legacy_tokens_enabled = False` makes it refuse the legacy key as an organisation with
    legacy tokens disabled does; `block_local_ip = True` and `ssrf_protection = True` behave as
    Label Studio's `ML_BLOCK_LOCAL_IP` and `SSRF_PROTECTION_ENABLED` do for loopback and
    private backend addresses (both off by default, as a local Label Studio must run).
    """

    version = "1.23.2"

    def __init__(
        self,
        *,
        personal_access_token: bool = False,
        api_key: str | None = None,
        accept_unknown_tasks: bool = False,
    ) -> None:
        self.personal_access_token = personal_access_token
        if api_key is None:
            api_key = _jwt({"token_type": "refresh", "exp": time.time() + 3e9}) if (
                personal_access_token
            ) else "0123456789abcdef0123456789abcdef01234567"  # fmt: skip
        self.api_key = api_key
        self.accept_unknown_tasks = accept_unknown_tasks
        self.access_tokens: set[str] = set()
        self.projects: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.predictions: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}  # "/data/upload/..." or "/data/local-files/?d=..."
        self.requests: list[tuple[str, str]] = []
        self.queries: list[tuple[str, str, dict[str, str]]] = []  # with each query string
        self.imports: list[int] = []  # the size of each bulk import of predictions, in order
        self.ml_backends: dict[int, dict[str, Any]] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.legacy_tokens_enabled = True
        self.block_local_ip = False
        self.ssrf_protection = False
        self._failures: list[list[Any]] = []  # [path prefix, status, times left]
        self._ids = {"project": 0, "task": 0, "annotation": 0, "prediction": 0, "ml": 0}
        self._ids["webhook"] = 0
        self._passwords: dict[int, str] = {}
        self.lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def __enter__(self) -> FakeLabelStudio:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def env(self) -> dict[str, str]:
        """`LABEL_STUDIO_URL` and `LABEL_STUDIO_API_KEY` for a backend that should use it."""
        return {"LABEL_STUDIO_URL": self.url, "LABEL_STUDIO_API_KEY": self.api_key}

    def add_project(
        self, label_config: str = "<View/>", title: str = "Project", *, id: int | None = None
    ) -> int:
        """Create a project (with the id given, or the next one); its id."""
        with self.lock:
            project_id = self._take("project", id)
            self.projects[project_id] = {
                "id": project_id, "title": title, "label_config": label_config,
                "created_at": _now(),
            }  # fmt: skip
            return project_id

    def add_task(
        self,
        project_id: int,
        data: dict[str, Any],
        annotations: Iterable[list[Any]] = (),
        *,
        id: int | None = None,
    ) -> int:
        """Create a task with `data` (and one annotation per `result` list given), with the id
        given or the next one; its id."""
        with self.lock:
            if project_id not in self.projects:
                raise KeyError(f"no project {project_id}")
            task_id = self._take("task", id)
            self.tasks[task_id] = {
                "id": task_id, "project": project_id, "data": data, "meta": {},
                "annotations": [], "predictions": [], "created_at": _now(),
            }  # fmt: skip
        for result in annotations:
            self.annotate(task_id, result)
        return task_id

    def annotate(self, task_id: int, result: list[Any], **fields: Any) -> dict[str, Any]:
        """Add an annotation to a task, as Label Studio stores it; the annotation."""
        with self.lock:
            task = self.tasks[task_id]
            now = _now()
            annotation = {
                "id": self._next("annotation"), "task": task_id, "project": task["project"],
                "result": result, "was_cancelled": False, "ground_truth": False,
                "completed_by": 1, "created_at": now, "updated_at": now, **fields,
            }  # fmt: skip
            task["annotations"].append(annotation)
            return annotation

    def upload(self, project_id: int, filename: str, content: bytes) -> str:
        """Store an uploaded file; the task-data value Label Studio gives it."""
        with self.lock:
            path = f"/data/upload/{project_id}/{len(self.files) + 1:08x}-{filename}"
            self.files[path] = content
            return path

    def add_local_file(self, relative_path: str, content: bytes) -> str:
        """Serve a file of Local Files storage; the task-data value that names it."""
        value = f"/data/local-files/?d={relative_path}"
        with self.lock:
            self.files[value] = content
        return value

    def add_ml_backend(
        self,
        project_id: int,
        url: str,
        *,
        title: str = "relaxml",
        basic_auth: tuple[str, str] | None = None,
    ) -> int:
        """Connect an ML backend to a project, as `POST /api/ml` does (without its checks);
        its id. Its event webhook (`{url}/webhook`) is created too, unless `ssrf_protection`
        refuses the address. `GET /api/ml?project=` calls its `/health` and `/setup`."""
        return _fakeml.add_ml_backend(self, project_id, url, title, basic_auth)

    def refresh_ml_backend(self, ml_id: int) -> dict[str, Any]:
        """Call the backend's `/health`, then `/setup`, and set its state as Label Studio's
        `update_state` does; the record."""
        return _fakeml.refresh_ml_backend(self, ml_id)

    def fail(
        self, path_prefix: str, status: int = 500, times: int = 1, *, lost: bool = False
    ) -> None:
        """Answer the next `times` requests whose path starts with `path_prefix` (`"/"`: all)
        with `status`. With `lost`, each request takes effect first and only its answer fails,
        as when a response is lost on the way back."""
        with self.lock:
            self._failures.append([path_prefix, status, times, lost])

    def recover(self) -> None:
        """Forget the failures `fail` asked for: answer normally again."""
        with self.lock:
            self._failures.clear()

    def predictions_by_task(self) -> dict[int, int]:
        """How many predictions are stored for each task."""
        with self.lock:
            counts: dict[int, int] = {}
            for prediction in self.predictions:
                counts[prediction["task"]] = counts.get(prediction["task"], 0) + 1
            return counts

    def predictions_of(self, task_id: int) -> list[dict[str, Any]]:
        """The predictions stored for a task, oldest first."""
        with self.lock:
            return [p for p in self.predictions if p["task"] == task_id]

    def start_training_event(self, project_id: int) -> dict[str, Any]:
        """The `START_TRAINING` webhook payload Label Studio sends for the project."""
        return {"action": "START_TRAINING", "project": dict(self.projects[project_id])}

    def annotation_event(self, annotation: dict[str, Any]) -> dict[str, Any]:
        """The `ANNOTATION_CREATED` webhook payload for an annotation `annotate` made."""
        task = self.tasks[annotation["task"]]
        return {
            "action": "ANNOTATION_CREATED",
            "project": dict(self.projects[task["project"]]),
            "task": {k: v for k, v in task.items() if k not in ("annotations", "predictions")},
            "annotation": annotation,
        }

    def project(self, project_id: int) -> dict[str, Any] | None:
        """The project, or None. With `accept_unknown_tasks` an unknown one is made."""
        with self.lock:
            if project_id not in self.projects and self.accept_unknown_tasks:
                self.projects[project_id] = {
                    "id": project_id, "title": "Project", "label_config": "<View/>",
                    "created_at": _now(),
                }  # fmt: skip
            return self.projects.get(project_id)

    def task_of_project(self, task_id: object, project_id: int | None) -> dict[str, Any] | None:
        """The task `task_id` (of `project_id`, when given), or None. With
        `accept_unknown_tasks` an unknown id becomes a task (and project) on first sight."""
        if not isinstance(task_id, int) or isinstance(task_id, bool):
            return None
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None and self.accept_unknown_tasks:
                project = project_id or 1
                self.project(project)
                task = self.tasks[task_id] = {
                    "id": task_id, "project": project, "data": {}, "meta": {},
                    "annotations": [], "predictions": [], "created_at": _now(),
                }  # fmt: skip
            if task is None or project_id not in (None, task["project"]):
                return None
            return task

    def store_prediction(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """Store one prediction (`{"task", "result", "score"?, "model_version"?}`)."""
        with self.lock:
            task = self.task_of_project(prediction["task"], None)
            if task is None:
                raise KeyError(f"no task {prediction['task']}")
            stored = {
                "id": self._next("prediction"), "project": task["project"], "score": None,
                "model_version": "", "created_at": _now(), **prediction,
            }  # fmt: skip
            self.predictions.append(stored)
            task["predictions"].append(stored)
            return stored

    def refuses_legacy_token(self, header: str | None) -> bool:
        """Whether `header` carries the legacy key while legacy tokens are disabled."""
        return not self.legacy_tokens_enabled and header == f"Token {self.api_key}"

    def authorized(self, header: str | None) -> bool:
        """Whether an `Authorization` header carries a key this Label Studio accepts."""
        scheme, _, credential = (header or "").partition(" ")
        if self.personal_access_token:
            return scheme == "Bearer" and credential in self.access_tokens
        return scheme == "Token" and credential == self.api_key

    def refresh(self, refresh_token: object) -> str | None:
        """A new 5-minute access token for the personal access token, or None."""
        if not self.personal_access_token or refresh_token != self.api_key:
            return None
        token = _jwt({"token_type": "access", "exp": time.time() + 300, "n": len(self.requests)})
        with self.lock:
            self.access_tokens.add(token)
        return token

    def injected_failure(self, path: str) -> tuple[int, bool] | None:
        """(status, lost) to answer `path` with, when a failure was asked for it."""
        with self.lock:
            for failure in self._failures:
                if path.startswith(failure[0]) and failure[2] > 0:
                    failure[2] -= 1
                    return int(failure[1]), bool(failure[3])
        return None

    def _take(self, kind: str, wanted: int | None) -> int:
        if wanted is None:
            return self._next(kind)
        self._ids[kind] = max(self._ids[kind], wanted)
        return wanted

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"
