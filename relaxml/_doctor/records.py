"""The backend as Label Studio sees it: the project's ML backend records, the address Label
Studio calls, the event webhook, the model version, Basic Auth on both sides."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from ..labelstudio.client import LabelStudioError
from .found import Found
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


def ml_backends(found: Found, report: Report) -> None:
    """The project's ML backends in Label Studio (listing them makes Label Studio call each
    one's `/health` and `/setup`, so their state is fresh)."""
    if found.project is None:
        report.skip("ML backends: no project")
        return
    records = project_records(found)
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
    found.record = next((r for r in records if record_url(r) == wanted), records[0])
    listed = "; ".join(
        f"{r.get('title')!r} at {record_url(r)} ({r.get('readable_state') or r.get('state')})"
        for r in records[:5]
    )
    note = ""
    if wanted and record_url(found.record) != wanted:
        note = f" (Label Studio calls the backend at {record_url(found.record)}, not {wanted})"
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
    url, state = record_url(record), record.get("state")
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
    hook = record_url(record) + "/webhook"
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
    kind = address_kind(record_url(record))
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


def project_records(found: Found) -> list[dict[str, Any]] | None:
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


def record_url(record: dict[str, Any]) -> str:
    """The address Label Studio calls the backend at, without a trailing slash."""
    return str(record.get("url") or "").rstrip("/")
