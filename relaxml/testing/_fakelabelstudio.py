"""`FakeLabelStudio`: the part of Label Studio's REST API an ML backend calls, on 127.0.0.1.

Real HTTP in a thread of the test's process, so relaxml's client, media fetcher and deliverer
talk to it exactly as they talk to Label Studio 1.23: the same paths, auth schemes, answers and
status codes (the contract relaxml's own end-to-end tests hold against a real Label Studio).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from ._routes import Reply, route


class FakeLabelStudio:
    """A Label Studio stand-in for tests: projects, tasks, annotations, uploads, local files,
    predictions, ML backends and their event webhooks, and both kinds of key, with failures on
    demand.

    `api_key` is what the backend gets as `LABEL_STUDIO_API_KEY`: a legacy token by default, or
    a personal access token (a JWT refresh token, exchanged at `/api/token/refresh/` for
    5-minute access tokens) with `personal_access_token=True`. Every request is recorded in
    `requests` as `(method, path)`; the predictions stored, by the bulk import or one by one, are
    in `predictions`. Use it as a context manager, or call `close()`.

    `legacy_tokens_enabled = False` makes it refuse the legacy key as an organisation with
    legacy tokens disabled does; `block_local_ip = True` and `ssrf_protection = True` behave as
    Label Studio's `ML_BLOCK_LOCAL_IP` and `SSRF_PROTECTION_ENABLED` do for loopback and
    private backend addresses (both off by default, as a local Label Studio must run).
    """

    version = "1.23.2"

    def __init__(self, *, personal_access_token: bool = False) -> None:
        self.personal_access_token = personal_access_token
        self.api_key = _jwt({"token_type": "refresh", "exp": time.time() + 3e9}) if (
            personal_access_token
        ) else "0123456789abcdef0123456789abcdef01234567"  # fmt: skip
        self.access_tokens: set[str] = set()
        self.projects: dict[int, dict[str, Any]] = {}
        self.tasks: dict[int, dict[str, Any]] = {}
        self.predictions: list[dict[str, Any]] = []
        self.files: dict[str, bytes] = {}  # "/data/upload/..." or "/data/local-files/?d=..."
        self.requests: list[tuple[str, str]] = []
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
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
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

    def add_project(self, label_config: str, title: str = "Project") -> int:
        """Create a project; its id."""
        with self.lock:
            project_id = self._next("project")
            self.projects[project_id] = {
                "id": project_id, "title": title, "label_config": label_config,
                "created_at": _now(),
            }  # fmt: skip
            return project_id

    def add_task(
        self, project_id: int, data: dict[str, Any], annotations: Iterable[list[Any]] = ()
    ) -> int:
        """Create a task with `data` (and one annotation per `result` list given); its id."""
        with self.lock:
            if project_id not in self.projects:
                raise KeyError(f"no project {project_id}")
            task_id = self._next("task")
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
        with self.lock:
            ml_id = self._next("ml")
            user, password = basic_auth or ("", "")
            self.ml_backends[ml_id] = {
                "id": ml_id, "project": project_id, "url": url, "title": title,
                "state": "DI", "readable_state": "Disconnected", "error_message": None,
                "auth_method": "BASIC_AUTH" if basic_auth else "NONE",
                "basic_auth_user": user, "basic_auth_pass_is_set": bool(password),
                "model_version": "", "is_interactive": False, "auto_update": True,
                "timeout": 100, "extra_params": None, "created_at": _now(),
            }  # fmt: skip
            self._passwords[ml_id] = password
            hook = url.rstrip("/") + "/webhook"
            if not (self.ssrf_protection and private_address(url)):
                self.webhooks.append({
                    "id": self._next("webhook"), "project": project_id, "url": hook,
                    "send_payload": True, "send_for_all_actions": True, "headers": {},
                    "is_active": True, "actions": [],
                })  # fmt: skip
            return ml_id

    def refresh_ml_backend(self, ml_id: int) -> dict[str, Any]:
        """Call the backend's `/health`, then `/setup`, and set its state as Label Studio's
        `update_state` does; the record."""
        with self.lock:
            record = self.ml_backends[ml_id]
            project = dict(self.projects[record["project"]])
            auth = (record["basic_auth_user"], self._passwords[ml_id])
        url = record["url"].rstrip("/") + "/"
        kw: dict[str, Any] = {"auth": auth if all(auth) else None, "allow_redirects": False}
        state, error, version = "DI", None, None
        if self.block_local_ip and private_address(url):
            error = "URL resolves to a reserved network address"
        else:
            try:
                requests.get(url + "health", timeout=(1, 1), **kw).raise_for_status()
                created = project["created_at"].replace("Z", "+00:00")
                stamp = int(datetime.fromisoformat(created).timestamp())
                answer = requests.post(
                    url + "setup",
                    json={
                        "project": f"{project['id']}.{stamp}",
                        "schema": project["label_config"],
                        "hostname": self.url,
                        "access_token": None,
                        "extra_params": None,
                    },
                    timeout=(1, 3),
                    **kw,
                )
                state = "ER"
                answer.raise_for_status()
                version = answer.json().get("model_version")
                state = "CO"
            except (requests.RequestException, ValueError) as exc:
                error = str(exc)
        readable = {"CO": "Connected", "ER": "Error", "DI": "Disconnected"}[state]
        with self.lock:
            record.update(state=state, readable_state=readable, error_message=error)
            if state == "CO":
                record["model_version"] = version
            return dict(record)

    def fail(self, path_prefix: str, status: int = 500, times: int = 1) -> None:
        """Answer the next `times` requests whose path starts with `path_prefix` with `status`."""
        with self.lock:
            self._failures.append([path_prefix, status, times])

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

    def store_prediction(self, prediction: dict[str, Any]) -> dict[str, Any]:
        """Store one prediction (`{"task", "result", "score"?, "model_version"?}`)."""
        with self.lock:
            task = self.tasks[prediction["task"]]
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

    def injected_failure(self, path: str) -> int | None:
        """The status to answer `path` with, when a failure was asked for it."""
        with self.lock:
            for failure in self._failures:
                if path.startswith(failure[0]) and failure[2] > 0:
                    failure[2] -= 1
                    return int(failure[1])
        return None

    def _next(self, kind: str) -> int:
        self._ids[kind] += 1
        return self._ids[kind]


def private_address(url: str) -> bool:
    """Whether the URL's host is a loopback, private or link-local address (or `localhost`)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def _handler(fake: FakeLabelStudio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            with fake.lock:
                fake.requests.append((method, path))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            status = fake.injected_failure(path)
            if status is not None:
                reply = Reply(status, {"detail": "failure injected by the test"})
            else:
                query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                reply = route(fake, method, path, query, body, self.headers.get("Authorization"))
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

    return Handler
