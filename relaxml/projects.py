"""Per-project state that Label Studio hands over in `/setup`: config, host, token, extra params.

Label Studio calls `/setup` before every batch of predictions, so the registry compares what
it receives with what it knows and reports whether anything changed; the model's `setup` hook
runs only then.

The registry is bounded: at most `max_projects` projects and `max_bytes` of their label configs,
hostnames, tokens and extra params; the least recently used project is forgotten first (its
next `/setup` counts as new). A label config larger than `MAX_KEPT_CONFIG` is not kept (Label
Studio sends the config with every `/predict` anyway).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ._lru import LRU
from .protocol import PredictRequest, SetupRequest, project_id_of

MAX_KEPT_CONFIG = 5_000_000
"""Characters: a longer label config is not remembered (the parser refuses it anyway)."""

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Project:
    """What relaxml knows about one Label Studio project.

    `uid` is Label Studio's project string (`"<id>.<created_ts>"`), `id` its numeric id.
    `access_token` is the project creator's token as Label Studio sent it; it never appears in
    a repr or a log.
    """

    uid: str
    id: int | None = None
    label_config: str | None = None
    hostname: str | None = None
    access_token: str | None = field(default=None, repr=False)
    extra_params: Mapping[str, Any] = field(default_factory=dict)


class ProjectRegistry:
    """The projects this process has seen, keyed by project uid. Thread-safe and bounded."""

    def __init__(self, max_projects: int = 1000, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_projects = max_projects
        self.max_bytes = max_bytes
        self._projects: LRU[str, Project] = LRU(max_projects, max_bytes, lambda _, p: _size(p))
        self._lock = threading.Lock()

    def get(self, uid: str) -> Project | None:
        """The project with this uid, if known."""
        with self._lock:
            return self._projects.get(uid)

    def by_id(self, project_id: int | None) -> Project | None:
        """The known project with Label Studio's numeric id, if any."""
        if project_id is None:
            return None
        with self._lock:
            return next((p for p in self._projects.values() if p.id == project_id), None)

    def all(self) -> list[Project]:
        """Every known project."""
        with self._lock:
            return list(self._projects.values())

    def __len__(self) -> int:
        return len(self._projects)

    @property
    def size(self) -> int:
        """The characters held by the known projects' configs, hosts, tokens and params."""
        return self._projects.held

    def update_from_setup(self, request: SetupRequest) -> tuple[Project, bool]:
        """Record a `/setup` call; return the project and whether it is new or changed."""
        fresh = Project(
            uid=request.project,
            id=project_id_of(request.project),
            label_config=_kept(request.label_config),
            hostname=request.hostname,
            access_token=request.access_token,
            extra_params=request.extra_params,
        )
        with self._lock:
            known = self._projects.get(fresh.uid)
            self._projects.put(fresh.uid, fresh)
        return fresh, known != fresh

    def for_predict(self, request: PredictRequest) -> Project:
        """The project a `/predict` call belongs to.

        Interactive and "Test" calls come without a `/setup` first, so a project first seen here
        is built from the request; a newer label config in the request wins.
        """
        uid = request.project or _uid_from_tasks(request)
        config = _kept(request.label_config)
        with self._lock:
            known = self._projects.get(uid)
            if known is None:
                known = Project(uid=uid, id=project_id_of(uid), label_config=config)
                self._projects.put(uid, known)
            elif config and config != known.label_config:
                known = replace(known, label_config=config)
                self._projects.put(uid, known)
        if request.label_config and known.label_config != request.label_config:
            known = replace(known, label_config=request.label_config)  # this call only
        return known

    def update_label_config(self, project_id: int, label_config: str) -> None:
        """Take a new label config from a `PROJECT_UPDATED` webhook."""
        config = _kept(label_config)
        with self._lock:
            for project in list(self._projects.values()):
                if project.id == project_id:
                    self._projects.put(
                        project.uid, replace(project, label_config=config), touch=False
                    )

    def forget(self, uid: str) -> bool:
        """Drop a project (the `/delete` route); return whether it was known."""
        with self._lock:
            return self._projects.pop(uid) is not None

    def copy(self, source: str, target: str) -> bool:
        """Copy a project's state to another uid (the `/duplicate_model` route)."""
        with self._lock:
            known = self._projects.get(source)
            if known is None:
                return False
            self._projects.put(target, replace(known, uid=target, id=project_id_of(target)))
            return True


def _kept(label_config: str | None) -> str | None:
    return label_config if label_config is None or len(label_config) <= MAX_KEPT_CONFIG else None


def _size(project: Project) -> int:
    size = len(project.uid) + len(project.label_config or "") + len(project.hostname or "")
    size += len(project.access_token or "")
    if project.extra_params:
        size += len(json.dumps(project.extra_params, default=str))
    return size


def _uid_from_tasks(request: PredictRequest) -> str:
    ids = {task.project_id for task in request.tasks if task.project_id is not None}
    return str(ids.pop()) if len(ids) == 1 else "unknown"
