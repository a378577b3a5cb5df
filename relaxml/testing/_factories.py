"""`make_task`, `make_context` and `make_event`: what `predict` and `fit` get, built without a
server."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..context import Context
from ..events import RunControl, TrainingEvent
from ..labelstudio.client import LabelStudioClient
from ..labelstudio.media import MediaFetcher
from ..memo import Memo
from ..projects import Project
from ..protocol import Task
from ._fakelabelstudio import FakeLabelStudio


def make_task(
    data: dict[str, Any] | None = None, *, id: int = 1, project: int | None = 1, **fields: Any
) -> Task:
    """A `Task` as `predict` receives it; `fields` go into the raw task (`annotations`,
    `meta`, ...)."""
    data = dict(data or {})
    raw = {"id": id, "data": data, "project": project, **fields}
    return Task(id=id, data=data, project_id=project, raw=raw)


def make_context(
    label_config: str | None = None,
    *,
    local_files_root: str | Path | None = None,
    label_studio: FakeLabelStudio | None = None,
    interactive: dict[str, Any] | None = None,
    project_id: int = 1,
    memo: Memo | None = None,
) -> Context:
    """A `Context` for calling `predict` directly.

    `context.local_path` works: `/data/local-files/?d=...` values are read under
    `local_files_root`, plain URLs are downloaded, and with `label_studio` (a `FakeLabelStudio`)
    its uploads and files are fetched with its key, as the server would. `interactive` is an
    interactive call's context (`params.context`), which `context.prompts` reads.
    """
    media = _media(label_studio, local_files_root)
    return Context(
        project=Project(uid=f"{project_id}.1700000000", id=project_id, label_config=label_config),
        label_config=label_config,
        interactive=interactive,
        media=media,
        memo=memo or Memo(),
    )


def make_event(
    label_config: str | None = None,
    *,
    action: str = "START_TRAINING",
    tasks: Sequence[dict[str, Any]] = (),
    annotations: Sequence[dict[str, Any]] = (),
    authenticated: bool = True,
    project_id: int = 1,
    label_studio: FakeLabelStudio | None = None,
    local_files_root: str | Path | None = None,
) -> TrainingEvent:
    """A `TrainingEvent` for calling `fit` directly, as a training run gives it.

    `tasks` and `annotations` are what the event carries (an annotation webhook's task and
    annotation, the legacy `/train`'s annotated tasks). With `label_studio` (a
    `FakeLabelStudio`), the run reaches its API: `event.annotated_tasks()` and, on "Start
    Training", `event.training_tasks()` page through the fake's annotated tasks of
    `project_id`, and `event.local_path` downloads its uploads. `local_files_root` serves
    `/data/local-files/?d=...` values from a folder.
    """
    media = _media(label_studio, local_files_root)
    return TrainingEvent(
        action=action,
        project_id=project_id,
        label_config=label_config,
        project={"id": project_id, "label_config": label_config},
        annotations=list(annotations),
        tasks=list(tasks),
        authenticated=authenticated,
        control=RunControl(media.client, None, media),
    )


def _media(
    label_studio: FakeLabelStudio | None, local_files_root: str | Path | None
) -> MediaFetcher:
    """A fetcher with the fake's key (if any) and a temporary cache that goes with it."""
    client = None
    if label_studio is not None:
        client = LabelStudioClient(label_studio.url, label_studio.api_key)
    cache = Path(tempfile.mkdtemp(prefix="relaxml-media-"))
    media = MediaFetcher(
        client, cache, local_files_root=Path(local_files_root) if local_files_root else None
    )
    weakref.finalize(media, shutil.rmtree, cache, True)
    return media
