"""Run a model over tasks in this process, as the server would call it, with no Label Studio.

`ModelRun` is a model set up once for an offline run (`setup` gets a project with the label
config; one media fetcher, one memo, and one event loop for an async `predict`), then fed
chunks of tasks: `ModelRun.chunk` predicts one chunk and gives its `Outcome`. Each output is
normalized as `/predict` normalizes it, then checked against the label config with
`check_prediction`. Every engine predicts through it: `run_model` here, in chunks of the model's
`max_batch_size` (32 when it sets none), and each Ray actor of `--engine ray`.

A chunk that runs out of memory is split in halves as when served (`_oom.split_on_oom`); a chunk
whose `predict` raises anything else is split in halves too, down to one task, so the tasks
that raise alone are found. A task out of memory alone, or raising alone, is noted in
`Outcome.failed` and gets no prediction; every other task of its chunk gets its own.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from .._metrics import Metrics
from .._oom import is_oom_entry, split_on_oom
from ..context import Context
from ..errors import describe
from ..labels.validation import Problem, check_prediction
from ..labelstudio._pool import ClientPool
from ..labelstudio.media import MediaFetcher
from ..memo import Memo
from ..model import LabelStudioModel
from ..prediction import Entry, normalize
from ..projects import Project
from ..protocol import Task
from ..settings import Settings

DEFAULT_CHUNK = 32
PREDICT_FAILED = "predict_failed"
"""The error code of a task whose `predict` raised alone."""

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class Outcome:
    """Each task's entry, in order, and the problems found in them by task position."""

    entries: list[Entry] = field(default_factory=list)
    problems: dict[int, list[Problem]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    """Tasks out of memory alone or whose `predict` raised alone, by position: the detail."""

    def extend(self, other: Outcome) -> None:
        """Append `other`'s tasks after this outcome's."""
        offset = len(self.entries)
        self.entries.extend(other.entries)
        self.problems.update({offset + i: found for i, found in other.problems.items()})
        self.failed.update({offset + i: detail for i, detail in other.failed.items()})


class ModelRun:
    """`model`, set up for an offline run with `label_config`: `chunk(tasks)` predicts."""

    def __init__(
        self, model: LabelStudioModel, label_config: str | None, settings: Settings
    ) -> None:
        """Set the model up (`setup` with a project holding `label_config`)."""
        self.model = model
        self.label_config = label_config
        self.chunk_size = model.max_batch_size or DEFAULT_CHUNK
        self.source = f"{type(model).__name__}.predict"
        project = Project(uid="offline", label_config=label_config)
        model.setup(project)
        self._stack = ExitStack()
        pool = ClientPool(settings.label_studio_url, settings.label_studio_api_key)
        self._stack.callback(pool.close)
        cache = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="relaxml-media-"))
        media = self._stack.enter_context(_media(pool, settings, Path(cache)))
        self.context = Context(
            project=project,
            label_config=label_config,
            media=media,
            memo=Memo(model.memo_entries, model.memo_bytes),
        )
        # one event loop for every call of an async predict, as when served; none for a sync one
        self._loop = asyncio.new_event_loop() if model.predicts_async() else None

    def __enter__(self) -> ModelRun:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the media fetcher, its cache and the event loop."""
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        self._stack.close()

    def chunk(self, items: Sequence[dict[str, Any]]) -> Outcome:
        """Predict `items` (tasks as Label Studio sends them) in one call, split on failure."""
        batch = [_as_task(item) for item in items]
        coroutine = self._isolate(batch)
        entries = self._loop.run_until_complete(coroutine) if self._loop else _finish(coroutine)
        outcome = Outcome()
        for position, entry in enumerate(entries):
            failure = _failure(entry)
            if failure is not None:
                outcome.failed[position] = failure
                entry = {"result": []}  # no prediction: written without one
            found = _problems(self.label_config, entry) if self.label_config else []
            if found:
                outcome.problems[position] = found
            outcome.entries.append(entry)
        return outcome

    def predict(
        self, tasks: Sequence[dict[str, Any]], progress: Callable[[int], None] = lambda n: None
    ) -> Outcome:
        """`tasks` in chunks of `chunk_size`; `progress(n)` after each chunk of n tasks."""
        outcome = Outcome()
        for start in range(0, len(tasks), self.chunk_size):
            chunk = tasks[start : start + self.chunk_size]
            outcome.extend(self.chunk(chunk))
            progress(len(chunk))
        return outcome

    async def _call(self, batch: list[Task]) -> list[Entry]:
        output = self.model.predict(batch, self.context)
        if self.model.predicts_async():
            output = await output  # type: ignore[misc]
        return normalize(
            output, len(batch), model_version=self.model.model_version, source=self.source
        )

    async def _isolate(self, batch: list[Task]) -> list[Entry | dict[str, Any]]:
        """`batch` predicted (out of memory: split by `split_on_oom`); when `predict` raises,
        each half again, down to one task, which then gets a `predict_failed` entry."""
        try:
            return await split_on_oom(
                self._call,
                batch,
                oom_errors=self.model.oom_errors,
                source=self.source,
                metrics=Metrics(),
                mode="offline",
            )
        except Exception as exc:
            if len(batch) == 1:
                detail = f"predict raised {describe(exc)}"
                logger.warning("task %s: %s", batch[0].id, detail)
                return [{"error": PREDICT_FAILED, "detail": detail}]
        half = (len(batch) + 1) // 2
        return await self._isolate(batch[:half]) + await self._isolate(batch[half:])


def run_model(
    model: LabelStudioModel,
    tasks: Sequence[dict[str, Any]],
    label_config: str | None,
    settings: Settings,
    progress: Callable[[int], None] = lambda done: None,
) -> Outcome:
    """Predict every task with `model`; `progress(n)` after each chunk of n tasks."""
    with ModelRun(model, label_config, settings) as run:
        return run.predict(tasks, progress)


def _failure(entry: object) -> str | None:
    """The detail of an entry of a task out of memory, or raising, alone; else None."""
    if is_oom_entry(entry) or (
        type(entry) is dict and entry.get("error") == PREDICT_FAILED and "result" not in entry
    ):
        return str(entry["detail"])
    return None


def _finish(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (it awaits only sync work) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a sync predict call was expected not to suspend")


def _media(pool: ClientPool, settings: Settings, cache: Path) -> MediaFetcher:
    """Local files under `local_files_root`, plain URLs, and Label Studio's files when
    `LABEL_STUDIO_URL` and a key are set."""
    client = pool.find(None, None)
    root = settings.local_files_root
    return MediaFetcher(
        client,
        cache,
        max_bytes=settings.media_max_bytes,
        cache_bytes=settings.media_cache_bytes,
        local_files_root=Path(root) if root else None,
        deadline=settings.media_deadline,
    )


def _as_task(item: dict[str, Any]) -> Task:
    return Task(id=item["id"], data=item["data"], raw=item)


def _problems(label_config: str, entry: Entry) -> list[Problem]:
    predictions = entry if isinstance(entry, list) else [entry]
    return [
        problem
        for prediction in predictions
        if prediction.get("result")
        for problem in check_prediction(label_config, prediction)
    ]
