"""The ML backend records of `FakeLabelStudio`: connecting a backend, and refreshing its state
by calling its `/health` and `/setup` as Label Studio does, with Label Studio's refusals of
loopback and private addresses (`ML_BLOCK_LOCAL_IP`, `SSRF_PROTECTION_ENABLED`)."""

from __future__ import annotations

import ipaddress
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

if TYPE_CHECKING:
    from ._fakelabelstudio import FakeLabelStudio


def add_ml_backend(
    fake: FakeLabelStudio,
    project_id: int,
    url: str,
    title: str,
    basic_auth: tuple[str, str] | None,
) -> int:
    """A new ML backend record of the project, and its event webhook; its id."""
    with fake.lock:
        ml_id = fake._next("ml")
        user, password = basic_auth or ("", "")
        fake.ml_backends[ml_id] = {
            "id": ml_id, "project": project_id, "url": url, "title": title,
            "state": "DI", "readable_state": "Disconnected", "error_message": None,
            "auth_method": "BASIC_AUTH" if basic_auth else "NONE",
            "basic_auth_user": user, "basic_auth_pass_is_set": bool(password),
            "model_version": "", "is_interactive": False, "auto_update": True,
            "timeout": 100, "extra_params": None, "created_at": _now(),
        }  # fmt: skip
        fake._passwords[ml_id] = password
        hook = url.rstrip("/") + "/webhook"
        if not (fake.ssrf_protection and private_address(url)):
            fake.webhooks.append({
                "id": fake._next("webhook"), "project": project_id, "url": hook,
                "send_payload": True, "send_for_all_actions": True, "headers": {},
                "is_active": True, "actions": [],
            })  # fmt: skip
        return ml_id


def refresh_ml_backend(fake: FakeLabelStudio, ml_id: int) -> dict[str, Any]:
    """The record after calling the backend's `/health` and `/setup` (Label Studio's
    `update_state`)."""
    with fake.lock:
        record = fake.ml_backends[ml_id]
        project = dict(fake.projects[record["project"]])
        auth = (record["basic_auth_user"], fake._passwords[ml_id])
    url = record["url"].rstrip("/") + "/"
    kw: dict[str, Any] = {"auth": auth if all(auth) else None, "allow_redirects": False}
    state, error, version = "DI", None, None
    if fake.block_local_ip and private_address(url):
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
                    "hostname": fake.url,
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
    with fake.lock:
        record.update(state=state, readable_state=readable, error_message=error)
        if state == "CO":
            record["model_version"] = version
        return dict(record)


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
