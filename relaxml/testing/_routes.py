"""What `FakeLabelStudio` answers to each request, as Label Studio 1.23 answers it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fakelabelstudio import FakeLabelStudio

NOT_FOUND = {"detail": "Not found."}
ANONYMOUS = {"detail": "Authentication credentials were not provided."}
LEGACY_DISABLED = {
    "detail": "Authentication token no longer valid: legacy token authentication has been "
    "disabled for this organization"
}
NO_PROJECT = {"detail": "No Project matches the given query."}


@dataclass
class Reply:
    """A status and a JSON body (or the bytes of a file)."""

    status: int
    body: Any
    content_type: str = "application/json"


def route(
    fake: FakeLabelStudio,
    method: str,
    path: str,
    query: dict[str, str],
    body: Any,
    authorization: str | None,
) -> Reply:
    """The answer to one request."""
    if method == "POST" and path == "/api/token/refresh/":
        access = fake.refresh(body.get("refresh") if isinstance(body, dict) else None)
        return Reply(200, {"access": access}) if access else Reply(401, {"detail": "invalid"})
    if method == "GET" and path == "/health":
        return Reply(200, {"status": "UP"})
    if method == "GET" and path.rstrip("/") == "/api/version":
        return Reply(200, {"release": fake.version})
    if fake.refuses_legacy_token(authorization):
        return Reply(401, LEGACY_DISABLED)
    if not fake.authorized(authorization):
        return Reply(401, ANONYMOUS)
    if method == "GET" and path.rstrip("/") == "/api/ml":
        return _ml_backends(fake, query)
    with fake.lock:
        if path.startswith("/data/"):
            return _file(fake, path, query)
        if method == "GET":
            return _get(fake, path, query)
        if method == "POST":
            return _post(fake, path, body)
    return Reply(405, {"detail": f'Method "{method}" not allowed.'})


def _file(fake: FakeLabelStudio, path: str, query: dict[str, str]) -> Reply:
    key = f"{path}?d={query.get('d', '')}" if path == "/data/local-files/" else path
    content = fake.files.get(key)
    if content is None:
        return Reply(404, NOT_FOUND)
    return Reply(200, content, "application/octet-stream")


def _get(fake: FakeLabelStudio, path: str, query: dict[str, str]) -> Reply:
    if path == "/api/current-user/whoami":
        return Reply(200, {"id": 1, "email": "annotator@example.com", "username": "annotator"})
    if match := re.fullmatch(r"/api/projects/(\d+)/?", path):
        project = fake.project(int(match[1]))
        return Reply(200, project) if project else Reply(404, NO_PROJECT)
    if path in ("/api/tasks", "/api/tasks/"):
        return _task_page(fake, query)
    if match := re.fullmatch(r"/api/tasks/(\d+)/?", path):
        task = fake.tasks.get(int(match[1]))
        return Reply(200, task) if task else Reply(404, NOT_FOUND)
    if path == "/api/jwt/settings":
        enabled = fake.legacy_tokens_enabled
        return Reply(200, {"api_tokens_enabled": True, "legacy_api_tokens_enabled": enabled})
    if path == "/api/webhooks/":
        hooks = [h for h in fake.webhooks if str(h["project"]) == query.get("project")]
        return Reply(200, hooks if "project" in query else fake.webhooks)
    if path == "/api/predictions/":
        found = [
            p
            for p in fake.predictions
            if all(str(p.get(k)) == query[k] for k in ("task", "project") if k in query)
        ]
        return Reply(200, found)
    return Reply(404, NOT_FOUND)


def _ml_backends(fake: FakeLabelStudio, query: dict[str, str]) -> Reply:
    """`GET /api/ml?project=`: each backend's state refreshed first, as Label Studio does."""
    with fake.lock:
        if not query.get("project", "").isdigit() or int(query["project"]) not in fake.projects:
            return Reply(404, NO_PROJECT)
        ids = [i for i, r in fake.ml_backends.items() if r["project"] == int(query["project"])]
    return Reply(200, [fake.refresh_ml_backend(i) for i in ids])


def _task_page(fake: FakeLabelStudio, query: dict[str, str]) -> Reply:
    tasks = [t for t in fake.tasks.values() if str(t["project"]) == query.get("project")]
    page, size = int(query.get("page", 1)), int(query.get("page_size", 100))
    chosen = tasks[(page - 1) * size : page * size]
    if page > 1 and not chosen:
        return Reply(404, {"detail": "Invalid page."})
    if query.get("fields") != "all":  # Label Studio leaves them out unless asked
        hidden = ("annotations", "predictions", "drafts")
        chosen = [{k: v for k, v in t.items() if k not in hidden} for t in chosen]
    return Reply(200, {"total": len(tasks), "tasks": chosen})


def _post(fake: FakeLabelStudio, path: str, body: Any) -> Reply:
    if match := re.fullmatch(r"/api/projects/(\d+)/import/predictions", path):
        project_id = int(match[1])
        items = body if isinstance(body, list) else []
        bad = [i for i in items if fake.task_of_project(_task_of(i), project_id) is None]
        if bad or not isinstance(body, list):
            return Reply(400, {"detail": "each prediction needs a task of this project"})
        for item in items:
            fake.store_prediction(item)
        fake.imports.append(len(items))
        return Reply(201, {"created": len(items)})
    if path == "/api/predictions/":
        if not isinstance(body, dict) or fake.task_of_project(_task_of(body), None) is None:
            return Reply(400, {"task": ["Invalid pk - object does not exist."]})
        return Reply(201, fake.store_prediction(body))
    if match := re.fullmatch(r"/api/tasks/(\d+)/annotations/?", path):
        task_id = int(match[1])
        if task_id not in fake.tasks or not isinstance(body, dict):
            return Reply(404, NOT_FOUND)
        return Reply(201, fake.annotate(task_id, body.get("result") or []))
    return Reply(404, NOT_FOUND)


def _task_of(item: Any) -> int | None:
    task = item.get("task") if isinstance(item, dict) else None
    return task if isinstance(task, int) else None
