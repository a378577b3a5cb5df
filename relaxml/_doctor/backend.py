"""The backend from here: its `/health` and its `/setup`, as Label Studio calls them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import requests

from .found import CONNECT_TIMEOUT, TIMEOUT, Found
from .records import project_records, record_url
from .report import Report


def backend_here(found: Found, report: Report) -> None:
    """`GET {backend}/health` answers from here; whether it requires Basic Auth."""
    url = found.backend_url
    if url is None:
        records = project_records(found) or []
        url = found.backend_url = record_url(records[0]) if records else None
    if url is None:
        report.skip("backend: pass --backend URL (or connect a model to the project)")
        return
    try:
        response = _call(found, "GET", url, "health", auth=None)
        if response.status_code == 401:
            found.backend_needs_auth = True
            if found.basic_auth is None:
                report.ok(f"backend at {url} answers /health: 401, it requires Basic Auth")
                return
            response = _call(found, "GET", url, "health", auth=found.basic_auth)
            if response.status_code == 401:
                report.fail(
                    f"backend at {url} refuses the Basic Auth user and password given",
                    "pass those relaxml serve uses (--basic-auth-user, RELAXML_BASIC_AUTH_PASS)",
                )
                return
        else:
            found.backend_needs_auth = False
    except requests.RequestException as exc:
        report.fail(
            f"backend unreachable from here at {url}: {type(exc).__name__}",
            "start it (relaxml serve) and check the host and port; pass --backend with the "
            "address that reaches it from here",
        )
        return
    body = _json(response)
    if not isinstance(body, dict) or "status" not in body:
        report.fail(
            f"{url}/health answered {response.status_code} without an ML backend's status",
            "pass the address relaxml serve listens on (--backend)",
        )
        return
    if response.status_code != 200 or body.get("status") != "UP":
        reason = f"{body.get('status')}: {body.get('reason')}" if body.get("reason") else ""
        report.fail(
            f"backend at {url} is {reason or body.get('status')} ({response.status_code})",
            "read the backend's log, then restart it",
        )
        return
    found.backend_answers = True
    found.backend_version = _str(body.get("model_version"))
    model = body.get("model_class") or "a model"
    report.ok(f"backend at {url}: UP, {model}, model version {found.backend_version!r}")


def setup_here(found: Found, report: Report) -> None:
    """`POST {backend}/setup` with the project's label config, as Label Studio sends it."""
    url = found.backend_url
    if found.backend_needs_auth and found.basic_auth is None:
        report.skip(
            "backend /setup: it requires Basic Auth: pass --basic-auth-user and "
            "RELAXML_BASIC_AUTH_PASS to call it"
        )
        return
    if url is None or not found.backend_answers:
        report.skip("backend /setup: the backend did not answer /health")
        return
    project, client = found.project, found.client
    if project is None or client is None:
        report.skip("backend /setup: it needs the project's label config (--project)")
        return
    body = {
        "project": _project_uid(project),
        "schema": project.get("label_config"),
        "hostname": client.url.rstrip("/"),
        "extra_params": None,
    }  # Label Studio also sends its project creator's token; the doctor sends none
    try:
        response = _call(found, "POST", url, "setup", auth=found.basic_auth, json=body)
    except requests.RequestException as exc:
        report.fail(f"backend /setup: no answer: {type(exc).__name__}", "read the backend's log")
        return
    answer = _json(response)
    version = answer.get("model_version") if isinstance(answer, dict) else None
    if response.status_code != 200 or not isinstance(answer, dict):
        detail = answer.get("detail") or answer.get("error") if isinstance(answer, dict) else ""
        report.fail(
            f"backend /setup answered {response.status_code}: {str(detail)[:200]}",
            "read the backend's log (the model's setup() may have failed)",
        )
    elif not isinstance(version, str):
        report.fail(
            "backend /setup answered no model_version: Label Studio then fails to open tasks",
            "give the model a model_version",
        )
    else:
        found.backend_version = version
        report.ok(f"backend /setup works for the project (model version {version!r})")


def _call(
    found: Found,
    method: str,
    url: str,
    path: str,
    *,
    auth: tuple[str, str] | None,
    json: Any = None,
) -> requests.Response:
    return found.http.request(
        method,
        url.rstrip("/") + "/" + path,
        auth=auth,
        json=json,
        timeout=(CONNECT_TIMEOUT, TIMEOUT),
        allow_redirects=False,
    )


def _project_uid(project: dict[str, Any]) -> str:
    """`<id>.<created_at as an int timestamp>`, as Label Studio names the project to a backend."""
    try:
        created = datetime.fromisoformat(str(project.get("created_at")).replace("Z", "+00:00"))
        stamp = int(created.timestamp())
    except ValueError:
        stamp = 0
    return f"{project.get('id')}.{stamp}"


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
