"""`make_task` and `make_context`: what `predict` gets, built without a server."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path
from typing import Any

from ..context import Context
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
    client = None
    if label_studio is not None:
        client = LabelStudioClient(label_studio.url, label_studio.api_key)
    cache = Path(tempfile.mkdtemp(prefix="relaxml-media-"))
    media = MediaFetcher(
        client, cache, local_files_root=Path(local_files_root) if local_files_root else None
    )
    weakref.finalize(media, shutil.rmtree, cache, True)  # the cache goes with the context
    return Context(
        project=Project(uid=f"{project_id}.1700000000", id=project_id, label_config=label_config),
        label_config=label_config,
        interactive=interactive,
        media=media,
        memo=memo or Memo(),
    )
