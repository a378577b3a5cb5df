"""Label Studio's side: reachable, the key and its kind, legacy tokens, the project and its
label config, and one task's media downloaded as the backend downloads it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from ..labels.labelconfig import LabelConfigError, parse_label_config
from ..labelstudio._urls import redact_url
from ..labelstudio.client import LabelStudioClient, LabelStudioError, is_jwt
from ..labelstudio.media import MediaError, MediaFetcher, human_size
from .found import CONNECT_TIMEOUT, TIMEOUT, Found
from .report import Report

LEGACY_DISABLED = "legacy token authentication has been disabled"
MEDIA_TAGS = frozenset(
    {"image", "audio", "audioplus", "video", "timeseries", "pdf", "paragraphs", "hypertext"}
)
REFERENCE_SCHEMES = frozenset({"http", "https", "s3", "gs", "azure-blob"})
URL_FIX = (
    "pass --url or set LABEL_STUDIO_URL to the address Label Studio is reached at from here "
    "(inside Docker, localhost is the container itself)"
)
PAT_FIX = (
    "use a personal access token (Account & Settings) or enable legacy tokens in "
    "Organization settings"
)


def label_studio(found: Found, report: Report) -> None:
    """Label Studio answers `/health` at the URL; its version from `/api/version`."""
    if not found.url:
        report.fail("no Label Studio URL", URL_FIX)
        return
    try:
        client = LabelStudioClient(
            found.url, found.api_key, timeout=TIMEOUT, connect_timeout=CONNECT_TIMEOUT, retries=0
        )
    except ValueError as exc:
        report.fail(f"cannot use {found.url!r} as Label Studio's URL: {exc}", URL_FIX)
        return
    try:
        health = _get(found, client.absolute("health"))
    except requests.RequestException as exc:
        report.fail(f"Label Studio is unreachable at {client.url}: {type(exc).__name__}", URL_FIX)
        return
    if health.status_code != 200 or _json(health) != {"status": "UP"}:
        report.fail(
            f"{client.url} answered {health.status_code} to /health, not Label Studio's "
            '{"status": "UP"}',
            URL_FIX + ", with its sub-path if it has one",
        )
        return
    found.client = client
    release = "(version unknown)"
    try:
        answer = _json(_get(found, client.absolute("api/version")))
    except requests.RequestException:
        answer = None
    if isinstance(answer, dict) and isinstance(answer.get("release"), str):
        release = answer["release"]
    report.ok(f"Label Studio {release} at {client.url}")


def api_key(found: Found, report: Report) -> None:
    """The key is valid, and which kind it is (legacy token or personal access token)."""
    client = found.client
    if client is None:
        report.skip("API key: Label Studio not reached")
        return
    key = found.api_key
    if not key:
        report.fail(
            "no API key",
            "pass --api-key or set LABEL_STUDIO_API_KEY to a personal access token "
            "(Account & Settings)",
        )
        return
    kind = found.key_kind = "personal access token" if is_jwt(key) else "legacy token"
    try:
        headers = client.auth_headers()  # a personal access token is exchanged here
        response = found.http.get(
            client.absolute("api/current-user/whoami"),
            headers=headers,
            timeout=(CONNECT_TIMEOUT, TIMEOUT),
            allow_redirects=False,
        )
    except LabelStudioError as exc:
        report.fail(
            f"API key: {exc}",
            "create a personal access token in Account & Settings and pass it with --api-key "
            "or LABEL_STUDIO_API_KEY",
        )
        return
    except requests.RequestException as exc:
        report.fail(f"API key: Label Studio stopped answering: {type(exc).__name__}", URL_FIX)
        return
    body = _json(response)
    detail = str(body.get("detail", "")) if isinstance(body, dict) else ""
    if response.status_code == 200:
        found.key_ok = True
        user = body.get("email") or body.get("username") if isinstance(body, dict) else None
        report.ok(f"API key: a {kind}" + (f" of {user}" if user else "") + ", accepted")
    elif response.status_code == 401 and kind == "legacy token" and LEGACY_DISABLED in detail:
        found.legacy_disabled = True
        report.ok("API key: a legacy token Label Studio knows (but see legacy tokens below)")
    elif response.status_code == 401:
        fix = (
            "copy the key again from Account & Settings (a reset token changes), or use a "
            "personal access token"
            if kind == "legacy token"
            else "the token was revoked or is from another Label Studio: create a new one in "
            "Account & Settings"
        )
        report.fail(f"API key: Label Studio refuses the {kind} (401: {detail[:120]})", fix)
    else:
        report.fail(
            f"API key: Label Studio answered {response.status_code} to the {kind}",
            "check that --url is Label Studio's address",
        )


def legacy_tokens(found: Found, report: Report) -> None:
    """Legacy tokens enabled for the organisation, when the key (or a backend) needs them."""
    client = found.client
    if found.legacy_disabled:
        report.fail(
            "legacy tokens are disabled for this organization, and the key is a legacy token",
            PAT_FIX,
        )
        return
    if client is None or not found.key_ok:
        report.skip("legacy tokens: no accepted API key")
        return
    legacy_key = found.key_kind == "legacy token"
    try:
        settings = client.request("GET", "api/jwt/settings", retry=False).json()
    except (LabelStudioError, ValueError) as exc:
        if legacy_key:
            report.ok("legacy tokens are enabled (the legacy token is accepted)")
        else:
            report.skip(f"legacy tokens: the organization's token settings are unreadable: {exc}")
        return
    enabled = settings.get("legacy_api_tokens_enabled") if isinstance(settings, dict) else None
    if legacy_key:
        report.ok("legacy tokens are enabled for this organization (the key is one)")
    elif enabled:
        report.ok("legacy tokens are enabled; the key is a personal access token (needs none)")
    else:
        report.ok(
            "legacy tokens are disabled; the key is a personal access token (needs none). A "
            "backend must have LABEL_STUDIO_API_KEY: the token /setup gives it is a legacy one"
        )


def project(found: Found, report: Report) -> None:
    """The project exists for this key, and its label config parses."""
    client = found.client
    if found.project_id is None:
        report.skip("project: pass --project ID (the number in the project's URL)")
        return
    if client is None or not found.key_ok:
        report.skip(f"{found.project_label}: no accepted API key")
        return
    try:
        body = client.request("GET", f"api/projects/{found.project_id}/", retry=False).json()
    except LabelStudioError as exc:
        if exc.status_code == 404:
            report.fail(
                f"{found.project_label} not found",
                "pass the number in the project's URL (/projects/ID/), of a project the key's "
                "user can open",
            )
        else:
            report.fail(f"{found.project_label}: {exc}", "use the key of a project member")
        return
    except ValueError:
        report.fail(f"{found.project_label}: Label Studio answered no JSON")
        return
    found.project = body if isinstance(body, dict) else {}
    title = found.project.get("title")
    try:
        config = parse_label_config(str(found.project.get("label_config") or ""))
    except LabelConfigError as exc:
        report.fail(
            f"{found.project_label} {title!r}: its label config does not parse: {exc}",
            "correct it in the project's Settings → Labeling Interface",
        )
        return
    found.config = config
    controls = ", ".join(f"{c.tag} {c.name}" for c in config.controls) or "no control"
    objects = ", ".join(f"{o.tag} {o.name}" for o in config.objects) or "no object"
    if not config.controls:
        report.fail(
            f"{found.project_label} {title!r}: the label config has no control tag, so "
            "nothing to predict",
            "set up the labeling interface (Settings → Labeling Interface)",
        )
        return
    report.ok(f"{found.project_label} {title!r}: label config parsed: {controls} on {objects}")


def media(found: Found, report: Report) -> None:
    """One task's media downloads through `MediaFetcher`, as the backend would fetch it."""
    client, config = found.client, found.config
    if client is None or config is None:
        report.skip("media: no project label config")
        return
    keys = [
        (o.tag, o.value_key)
        for o in config.objects
        if o.value_key and (o.type in MEDIA_TAGS or o.attrs.get("valueType", "") == "url")
    ]
    if not keys:
        report.skip("media: the label config shows no media (Image, Audio, Video, ...)")
        return
    try:
        page = client.request(
            "GET", "api/tasks", params={"project": found.project_id, "page_size": 1}, retry=False
        ).json()
    except (LabelStudioError, ValueError) as exc:
        report.fail(f"media: cannot list the project's tasks: {exc}")
        return
    tasks = page.get("tasks") if isinstance(page, dict) else None
    if not tasks:
        report.skip(f"media: {found.project_label} has no task yet: import one to check it")
        return
    task: dict[str, Any] = tasks[0]
    task_id, data = task.get("id"), task.get("data") or {}
    chosen = next(((tag, key) for tag, key in keys if key in data), None)
    if chosen is None:
        tag, key = keys[0]
        report.fail(
            f'media: task {task_id} has no {key!r} in its data, which <{tag} value="${key}"> shows',
            f"import tasks with a {key!r} field, or change the value attribute to a field "
            "they have",
        )
        return
    tag, key = chosen
    value = data[key]
    if isinstance(value, list) and value:
        value = value[0]
    if not isinstance(value, str) or not _is_reference(value):
        report.skip(f"media: task {task_id}'s {key!r} is inline data, nothing to download")
        return
    shown = redact_url(value)
    settings = found.settings
    root = settings.local_files_root
    try:
        with (
            tempfile.TemporaryDirectory(prefix="relaxml-doctor-") as cache,
            MediaFetcher(
                client,
                Path(cache),
                max_bytes=settings.media_max_bytes,
                cache_bytes=settings.media_cache_bytes,
                local_files_root=Path(root) if root else None,
                deadline=settings.media_deadline,
            ) as fetcher,
        ):
            size = fetcher.path(value, task_id if isinstance(task_id, int) else None).stat()
    except MediaError as exc:
        report.fail(f"media: task {task_id}'s {key}: {exc}", _media_fix(exc, value))
        return
    report.ok(
        f"media: task {task_id}'s {key} {shown} downloaded ({human_size(size.st_size)}), "
        "as the backend fetches it"
    )


def _media_fix(exc: MediaError, value: str) -> str:
    upload = value.strip().startswith("/data/upload/")
    if exc.status_code == 404 or (exc.status_code == 500 and upload):
        return (
            "the file is missing: upload it again, or correct the task's data (Label Studio "
            "1.23 answers 500 for a missing upload; Local Files and cloud storage "
            "need a storage of the project that covers the path)"
        )
    if exc.status_code in (401, 403):
        return (
            "use the key of a user with access to the project; Local Files need "
            "LOCAL_FILES_SERVING_ENABLED=true in Label Studio"
        )
    return "check that this machine reaches the file's host, as the backend must"


def _is_reference(value: str) -> bool:
    value = value.strip()
    if value.startswith("/") and not value.startswith("//"):
        return True
    try:
        return urlsplit(value).scheme.lower() in REFERENCE_SCHEMES
    except ValueError:
        return False


def _get(found: Found, url: str) -> requests.Response:
    """GET without credentials."""
    return found.http.get(url, timeout=(CONNECT_TIMEOUT, TIMEOUT), allow_redirects=False)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
