"""`Context`: everything about a `/predict` call that is not the tasks themselves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .labels.prompts import Prompts, parse_prompts
from .memo import Memo
from .prediction import Entry
from .projects import Project
from .protocol import Task

if TYPE_CHECKING:
    from .labelstudio.media import MediaFetcher


@dataclass(frozen=True)
class Context:
    """What a model's `predict` gets beside the tasks.

    - `project`: the project, as known from `/setup` (label config, host, extra params).
    - `label_config`: the labeling config XML of this call.
    - `interactive`: the regions an annotator just drew with a smart tool (Label Studio's
      `params.context`), or None for ordinary calls.
    - `params`: the raw `params` object of the request, credentials removed.
    - `media`: the `MediaFetcher` for the project's Label Studio; `local_path` uses it.
    - `memo`: values of expensive per-task work kept between calls (`Memo`): the served
      model's own, emptied when a new version is adopted.
    - `prompts`: the regions of an interactive call, typed (`relaxml.labels.prompts`).
    """

    project: Project
    label_config: str | None = None
    interactive: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)
    media: MediaFetcher | None = field(default=None, repr=False, compare=False)
    memo: Memo = field(default_factory=Memo, repr=False, compare=False)

    def local_path(self, value: str, task: Task | int | None = None) -> Path:
        """The local file a task-data value points to (`/data/upload/…`, local files, `s3://…`,
        plain URLs), downloaded through the cache when needed. Blocking.

        Pass the task (or its id) for cloud-storage URIs. Raises
        `relaxml.labelstudio.MediaError` with what to fix when the file cannot be had.
        """
        if self.media is None:
            raise RuntimeError("no media fetcher: local_path works while relaxml serves the model")
        task_id = task.id if isinstance(task, Task) else task
        return self.media.path(value, task_id=task_id)

    def read_text(self, value: str, task: Task | int | None = None) -> str:
        """The text a task-data value points to, for a `Text` or `HyperText` whose data is a
        URL (`valueType="url"`): fetched like `local_path` (the same credential rules, size
        limit and cache) and decoded as UTF-8, a byte that is not UTF-8 replaced by U+FFFD.
        Blocking."""
        return self.local_path(value, task).read_text(encoding="utf-8", errors="replace")

    @cached_property
    def prompts(self) -> Prompts:
        """The prompts of an interactive call, typed: each region the annotator just drew
        with a smart tool (or a text prompt) as a `Prompt`, with its kind, positive or
        negative, label, control, object and geometry in pixels of the original image.

        Parsed on first use and kept. Empty for a call that is not interactive. Items that
        cannot be read are in `prompts.unparsed`; they never fail the call.
        """
        return parse_prompts(self.interactive, self.label_config or self.project.label_config)

    @property
    def is_interactive(self) -> bool:
        """True when an annotator is waiting on this call with a smart tool."""
        return self.interactive is not None


RunModel = Callable[[list[Task], Context], Awaitable[list[Entry]]]
"""How relaxml calls a model: tasks and their context in, one entry per task out (through the
scheduler, the micro-batcher or a background job)."""
