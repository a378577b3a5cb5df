"""`TrainingEvent`: every Label Studio webhook payload, and the legacy `/train` body, as one type.

Label Studio sends `START_TRAINING` with only a project, annotation events with one annotation
(or a list of them), deletions with a list of ids, and the legacy `/train` with annotated tasks.
`fit` gets one shape for all of them and never meets a `KeyError`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import BadRequest
from .labelstudio._trainingdata import annotated_tasks
from .labelstudio.client import LabelStudioClient, LabelStudioError
from .protocol import is_int64, project_id_of

if TYPE_CHECKING:
    from .labelstudio.media import MediaFetcher

START_TRAINING = "START_TRAINING"

ANNOTATION_ACTIONS = frozenset(
    {"ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED"}
)
"""The webhook actions that carry annotation changes."""

DEFAULT_TRAIN_ON = frozenset({START_TRAINING} | ANNOTATION_ACTIONS)
"""The actions that reach `fit` unless configured otherwise."""


@dataclass(frozen=True)
class TrainingEvent:
    """One reason to train.

    - `action`: Label Studio's action, e.g. `"START_TRAINING"` or `"ANNOTATION_CREATED"`.
    - `project_id`, `label_config`, `project`: the project (the full payload in `project`).
    - `annotations`, `tasks`: whatever the payload carried, always as lists (maybe empty).
      When several events were coalesced into one run, their annotations and tasks are
      concatenated, oldest first, and `coalesced` says how many events there were.
    - `raw`: the whole payload (of the latest event).
    - `authenticated`: False when a caller without credentials sent the event (Basic Auth on,
      `RELAXML_WEBHOOK_AUTH=events-open`; docs/auth.md). Its payload is then whatever that
      caller wrote: read training data with `annotated_tasks()`, which asks Label Studio.
      For coalesced events, True only if every one of them was.

    During a run, `training_tasks()` gives what to train on (with `refits` saying whether that
    is the whole project or only what this event adds), `annotated_tasks()` fetches the
    project's training data from Label Studio, `local_path()` the media a task names, and
    `should_stop()` tells whether the run was cancelled.
    """

    action: str
    project_id: int | None
    label_config: str | None = None
    project: dict[str, Any] = field(default_factory=dict, repr=False)
    annotations: list[dict[str, Any]] = field(default_factory=list, repr=False)
    tasks: list[dict[str, Any]] = field(default_factory=list, repr=False)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    coalesced: int = 1
    authenticated: bool = True
    control: RunControl | None = field(default=None, repr=False, compare=False)

    @property
    def label_studio(self) -> LabelStudioClient | None:
        """A client for the project's Label Studio, when its URL and key are known."""
        return self.control.client if self.control else None

    def annotated_tasks(self, *, only_changed: bool = False) -> Iterator[dict[str, Any]]:
        """Every annotated task of the project, fetched from Label Studio page by page.

        With `only_changed`, only tasks annotated since the project's last successful run.
        Raises `LabelStudioError` (with what to configure) when the API cannot be used.
        """
        if self.control is None or self.control.client is None or self.project_id is None:
            raise LabelStudioError(
                "training data needs Label Studio's API: set LABEL_STUDIO_URL and "
                "LABEL_STUDIO_API_KEY (or let Label Studio call /setup first)"
            )
        since = self.control.last_success if only_changed else None
        for task in annotated_tasks(self.control.client, self.project_id, since=since):
            self.control.annotations_used += len(task["annotations"])
            yield task

    @property
    def refits(self) -> bool:
        """True when `training_tasks()` yields every annotated task of the project, from Label
        Studio: train from scratch. False when it yields only what this event carries: add it
        to what the model already learnt.

        A refit happens on "Start Training", and for an event sent without credentials, whose
        payload is never trusted, whenever Label Studio's API is configured.
        """
        return self.label_studio is not None and (
            self.action == START_TRAINING or not self.authenticated
        )

    def training_tasks(self) -> Iterator[dict[str, Any]]:
        """The tasks to train on, each `{"id", "data", ..., "annotations": [...]}` with its
        non-cancelled annotations, oldest first.

        When `refits`: every annotated task of the project, from Label Studio (as
        `annotated_tasks()`). Otherwise the tasks this event carries with the annotations it
        carries for them (an annotation event, the legacy `/train`); nothing at all for an
        event sent without credentials, whose payload anyone could have written. Stops early
        once the run is cancelled (its result is discarded anyway).
        """
        if self.refits:
            tasks: Iterator[dict[str, Any]] = self.annotated_tasks()
            carried: list[dict[str, Any]] = []
        elif self.authenticated:
            tasks, carried = iter(self.tasks), self.annotations
        else:
            return
        one_task = len(self.tasks) == 1
        for task in tasks:
            if self.should_stop():
                return
            task_id = task.get("id")
            own = [a for a in task.get("annotations") or [] if isinstance(a, dict)]
            # The event's own annotations go with the task they name (or with its only task);
            # the legacy /train lists each task's annotations twice: once is enough.
            own += [
                a
                for a in carried
                if isinstance(a, dict)
                and (a.get("task") == task_id or (one_task and a.get("task") is None))
                and not any(a is o for o in own)
            ]
            annotations = [
                a for a in own if a.get("task") in (None, task_id) and not a.get("was_cancelled")
            ]
            if annotations:
                yield {**task, "annotations": annotations}

    def local_path(self, value: str, task: dict[str, Any] | int | None = None) -> Path:
        """The local file a task-data value points to, as `Context.local_path` gives it to
        `predict` (the same credential rules, size limit and cache). Blocking.

        Pass the task (or its id) for cloud-storage URIs. Raises `RuntimeError` outside a
        training run, and `relaxml.labelstudio.MediaError` with what to fix when the file
        cannot be had.
        """
        if self.control is None or self.control.media is None:
            raise RuntimeError("no media fetcher: local_path works while relaxml trains the model")
        task_id = task.get("id") if isinstance(task, dict) else task
        return self.control.media.path(value, task_id=task_id if isinstance(task_id, int) else None)

    def should_stop(self) -> bool:
        """True once the run was cancelled: return early (the result will be discarded)."""
        return self.control is not None and self.control.cancelled.is_set()

    def to_payload(self) -> dict[str, Any]:
        """The event as JSON, to queue it."""
        return {
            "action": self.action,
            "project_id": self.project_id,
            "label_config": self.label_config,
            "project": self.project,
            "annotations": self.annotations,
            "tasks": self.tasks,
            "raw": self.raw,
            "authenticated": self.authenticated,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> TrainingEvent:
        """The event `to_payload` wrote."""
        return cls(**payload)

    @property
    def project_key(self) -> str:
        """A key that identifies the project among this process's training runs."""
        return str(self.project_id) if self.project_id is not None else "unknown"


def event_from_webhook(body: object, *, authenticated: bool = True) -> TrainingEvent:
    """Read a `/webhook` payload, whatever its action."""
    if not isinstance(body, dict):
        raise BadRequest("the webhook body must be a JSON object with an 'action'")
    action = body.get("action")
    if not isinstance(action, str) or not action:
        raise BadRequest("missing field 'action': expected a string", field="action")
    project = body.get("project")
    project = project if isinstance(project, dict) else {}
    project_id = project.get("id")
    if not is_int64(project_id):
        project_id = None
    label_config = project.get("label_config")
    annotations = _listed(body.get("annotation")) + _listed(body.get("annotations"))
    tasks = _listed(body.get("task")) + _listed(body.get("tasks"))
    if project_id is None:
        project_id = _first_int(annotations + tasks, "project")
    return TrainingEvent(
        action=action,
        project_id=project_id,
        label_config=label_config if isinstance(label_config, str) else None,
        project=project,
        annotations=annotations,
        tasks=tasks,
        raw=body,
        authenticated=authenticated,
    )


def event_from_legacy_train(body: object) -> TrainingEvent:
    """Read the legacy `POST /train` body: annotated tasks under `annotations`."""
    if not isinstance(body, dict):
        raise BadRequest("the /train body must be a JSON object")
    tasks = body.get("annotations", [])
    if not isinstance(tasks, list):
        raise BadRequest("'annotations' must be a list of tasks", field="annotations")
    tasks = [task for task in tasks if isinstance(task, dict)]
    uid = body.get("project")
    project_id = project_id_of(str(uid)) if isinstance(uid, (str, int)) else None
    if project_id is None:
        project_id = _first_int(tasks, "project")
    label_config = body.get("label_config")
    annotations = [a for task in tasks for a in _listed(task.get("annotations"))]
    return TrainingEvent(
        action=START_TRAINING,
        project_id=project_id,
        label_config=label_config if isinstance(label_config, str) else None,
        annotations=annotations,
        tasks=tasks,
        raw=body,
    )


def _listed(value: object) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _first_int(items: list[dict[str, Any]], key: str) -> int | None:
    for item in items:
        value = item.get(key)
        if is_int64(value):
            return value
    return None


class RunControl:
    """What a running `fit` can reach: Label Studio, its media, the cancel flag, usage counts."""

    def __init__(
        self,
        client: LabelStudioClient | None,
        last_success: float | None,
        media: MediaFetcher | None = None,
    ) -> None:
        self.client = client
        self.media = media
        self.last_success = last_success
        self.cancelled = threading.Event()
        self.annotations_used = 0


def merge(events: Sequence[TrainingEvent], control: RunControl | None = None) -> TrainingEvent:
    """One event standing for several coalesced ones (the latest, with everything they carried)."""
    latest = events[-1]
    starts = any(e.action == START_TRAINING for e in events)
    return replace(
        latest,
        action=START_TRAINING if starts else latest.action,
        annotations=[a for e in events for a in e.annotations],
        tasks=[t for e in events for t in e.tasks],
        coalesced=len(events),
        authenticated=all(e.authenticated for e in events),
        control=control,
    )
