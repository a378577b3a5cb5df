"""The backend: from here (`/health`, `/setup`), then as Label Studio sees it (its ML backend
record, the address Label Studio calls, the event webhook, the model version, Basic Auth)."""

from __future__ import annotations

import ipaddress
import socket
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from ..labelstudio.client import LabelStudioError
from .found import CONNECT_TIMEOUT, TIMEOUT, Found
from .report import Report

REACHED = frozenset({"CO", "TR", "PR"})  # Connected, Training, Predicting
AUTH_FIX = (
    "in Label Studio, edit the model (Project → Settings → Model): Authentication Method "
    "Basic Auth, with the user and password relaxml serve uses (RELAXML_BASIC_AUTH_USER, "
    "RELAXML_BASIC_AUTH_PASS)"
)
BLOCKED = (
    "Label Studio 1.23 refuses loopback and private addresses unless started with "
    "ML_BLOCK_LOCAL_IP=false"
)


def backend_here(found: Found, report: Report) -> None:
    """`GET {backend}/health` answers from here; whether it requires Basic Auth."""
    url = found.backend_url
    if url is None:
        records = _records(found) or []
        url = found.backend_url = _url(records[0]) if records else None
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


def ml_backends(found: Found, report: Report) -> None:
    """The project's ML backends in Label Studio (listing them makes Label Studio call each
    one's `/health` and `/setup`, so their state is fresh)."""
    if found.project is None:
        report.skip("ML backends: no project")
        return
    records = _records(found)
    if records is None:
        report.fail(f"ML backends of {found.project_label}: Label Studio did not list them")
        return
    if not records:
        kind = address_kind(found.backend_url) if found.backend_url else None
        refused = (
            f" (Label Studio refuses {found.backend_url}, a {kind} address, with 403 'URL "
            "resolves to a reserved network address' unless started with ML_BLOCK_LOCAL_IP=false)"
            if kind
            else ""
        )
        report.fail(
            f"{found.project_label} has no ML backend",
            "connect one: Project → Settings → Model → Connect Model, with the backend's URL"
            + refused,
        )
        return
    wanted = (found.backend_url or "").rstrip("/")
    found.record = next((r for r in records if _url(r) == wanted), records[0])
    listed = "; ".join(
        f"{r.get('title')!r} at {_url(r)} ({r.get('readable_state') or r.get('state')})"
        for r in records[:5]
    )
    note = ""
    if wanted and _url(found.record) != wanted:
        note = f" (Label Studio calls the backend at {_url(found.record)}, not {wanted})"
    report.ok(f"ML backends of {found.project_label}: {listed}{note}")


def label_studio_reaches(found: Found, report: Report) -> None:
    """The backend as reachable from Label Studio as can be told: the record's state (Label
    Studio has just called `/health` and `/setup`), and the address's kind."""
    record = found.record
    if record is None:
        url = found.backend_url
        kind = address_kind(url) if url else None
        if url and kind:
            report.warn(
                f"Label Studio's side: {url} is a {kind} address",
                f"{BLOCKED}; use an address Label Studio reaches",
            )
        else:
            report.skip("Label Studio's side: no ML backend record")
        return
    url, state = _url(record), record.get("state")
    readable = record.get("readable_state") or state
    kind = address_kind(url)
    if state in REACHED:
        where = (
            f"; a {kind} address, so Label Studio runs with ML_BLOCK_LOCAL_IP=false" if kind else ""
        )
        report.ok(f"Label Studio reaches the backend at {url} ({readable}){where}")
        return
    error = " ".join(str(record.get("error_message") or "").split())[:200]
    if state == "ER":
        report.fail(
            f"Label Studio reaches the backend at {url}, but its /setup fails: {error}",
            "read the backend's log (the model's setup() may have failed)",
        )
        return
    fixes = []
    same = url == (found.backend_url or "").rstrip("/")
    if "401" in error or (found.backend_needs_auth and not error):
        fixes.append("Label Studio's Basic Auth does not match the backend's: see Basic Auth below")
    else:
        if same and not found.backend_answers and not found.backend_needs_auth:
            fixes.append(f"start the backend at {url} (relaxml serve)")
        if kind:
            fixes.append(f"{url} is a {kind} address: {BLOCKED}")
        fixes.append("make Label Studio's machine reach it (inside Docker, not localhost)")
    report.fail(
        f"Label Studio cannot reach the backend at {url} ({readable}"
        + (f": {error})" if error else ")"),
        "; or ".join(fixes),
    )


def event_webhook(found: Found, report: Report) -> None:
    """The project webhook that carries annotation events to `{backend}/webhook`."""
    record, client = found.record, found.client
    if record is None or client is None:
        report.skip("event webhook: no ML backend record")
        return
    hook = _url(record) + "/webhook"
    try:
        hooks = client.request(
            "GET", "api/webhooks/", params={"project": found.project_id}, retry=False
        ).json()
    except (LabelStudioError, ValueError) as exc:
        report.skip(f"event webhook: cannot list the project's webhooks: {exc}")
        return
    mine = [h for h in hooks if isinstance(h, dict) and str(h.get("url")).rstrip("/") == hook]
    if any(h.get("is_active", True) for h in mine):
        report.ok(f"event webhook to {hook}: annotation events reach the backend")
        return
    if mine:
        report.warn(
            f"event webhook to {hook} is inactive: annotation events do not reach the backend",
            "turn it on in Project → Settings → Webhooks",
        )
        return
    kind = address_kind(_url(record))
    why = (
        f" (Label Studio does not create it for a {kind} address while "
        "SSRF_PROTECTION_ENABLED is on)"
        if kind
        else ""
    )
    report.warn(
        f"no event webhook to {hook}: annotation events do not reach the backend{why}; "
        "Start Training works without it",
        "start Label Studio with SSRF_PROTECTION_ENABLED=false, then save the model again "
        "(Settings → Model), or add the webhook in Project → Settings → Webhooks",
    )


def model_version(found: Found, report: Report) -> None:
    """The model version Label Studio recorded is the one the backend serves."""
    record = found.record
    if record is None or found.backend_version is None:
        report.skip("model version: needs the ML backend record and the backend's answer")
        return
    if record.get("state") not in REACHED:
        report.skip("model version: Label Studio is not connected to the backend")
        return
    theirs = record.get("model_version")
    if theirs == found.backend_version:
        report.ok(f"model version {theirs!r} in Label Studio and the backend")
        return
    report.warn(
        f"model version: Label Studio has {theirs!r}, the backend at {found.backend_url} "
        f"serves {found.backend_version!r}",
        "if --backend is another server than the one Label Studio calls, pass the same URL; "
        "else turn on the model's auto update (auto_update) in Label Studio",
    )


def basic_auth(found: Found, report: Report) -> None:
    """Basic Auth on both sides or on neither: the backend's `/health` without credentials
    against the record's `auth_method`."""
    record = found.record
    if record is None or found.backend_needs_auth is None:
        report.skip("Basic Auth: needs the ML backend record and the backend's answer")
        return
    label_studio_sends = record.get("auth_method") == "BASIC_AUTH"
    needs = found.backend_needs_auth
    if needs and not label_studio_sends:
        report.fail(
            "Basic Auth: the backend requires it, but Label Studio's ML backend record has "
            "none (auth_method NONE)",
            AUTH_FIX,
        )
    elif needs and record.get("state") not in REACHED:
        report.fail(
            "Basic Auth: the backend requires it and Label Studio sends credentials, but "
            "cannot connect: are they the backend's?",
            AUTH_FIX,
        )
    elif needs:
        report.ok("Basic Auth: the backend requires it, Label Studio sends it (accepted)")
    elif label_studio_sends:
        report.warn(
            "Basic Auth: Label Studio sends credentials, but the backend requires none: "
            "anyone who reaches it can use it",
            "start relaxml serve with --basic-auth-user and RELAXML_BASIC_AUTH_PASS, the same "
            "as in Label Studio",
        )
    else:
        report.ok("Basic Auth: off on both sides")


def address_kind(url: str) -> str | None:
    """`loopback`, `private` or `link-local` when the URL's host is such an address (as it
    resolves here), else None."""
    try:
        host = urlsplit(url).hostname
        infos = socket.getaddrinfo(host, None) if host else []
    except (OSError, ValueError, UnicodeError):
        return None
    for info in infos:
        try:
            ip = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        except ValueError:
            continue
        if ip.is_loopback:
            return "loopback"
        if ip.is_link_local:
            return "link-local"
        if ip.is_private:
            return "private"
    return None


def _records(found: Found) -> list[dict[str, Any]] | None:
    """The project's ML backend records (Label Studio refreshes their state first)."""
    client = found.client
    if client is None or found.project is None:
        return None
    try:
        body = client.request(
            "GET", "api/ml", params={"project": found.project_id}, retry=False
        ).json()
    except (LabelStudioError, ValueError):
        return None
    records = [r for r in body if isinstance(r, dict)] if isinstance(body, list) else None
    found.records = records
    return records


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


def _url(record: dict[str, Any]) -> str:
    return str(record.get("url") or "").rstrip("/")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
