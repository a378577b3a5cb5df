"""Run a model over tasks in this process, as the server would call it, with no Label Studio.

The model is built once; `setup` gets a project with the label config; tasks go to `predict` in
chunks of the model's `max_batch_size` (32 when it sets none); each output is normalized as
`/predict` normalizes it, then checked against the label config with `check_prediction`. A
chunk that runs out of memory is split in halves as when served (`_oom.split_on_oom`); a task
out of memory alone is noted in `Outcome.failed` and gets no prediction.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable, Coroutine, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from .._metrics import Metrics
from .._oom import is_oom_entry, split_on_oom
from ..context import Context
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
T = TypeVar("T")


@dataclass
class Outcome:
    """Each task's entry, in order, and the problems found in them by task position."""

    entries: list[Entry] = field(default_factory=list)
    problems: dict[int, list[Problem]] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    """Tasks out of memory alone, by position: the detail."""


def run_model(
    model: LabelStudioModel,
    tasks: Sequence[dict[str, Any]],
    label_config: str | None,
    settings: Settings,
    progress: Callable[[int], None] = lambda done: None,
) -> Outcome:
    """Predict every task with `model`; `progress(n)` after each chunk of n tasks."""
    project = Project(uid="offline", label_config=label_config)
    model.setup(project)
    chunk = model.max_batch_size or DEFAULT_CHUNK
    source = f"{type(model).__name__}.predict"
    outcome = Outcome()
    pool = ClientPool(settings.label_studio_url, settings.label_studio_api_key)
    with (
        closing(pool),
        tempfile.TemporaryDirectory(prefix="relaxml-media-") as cache,
        _media(pool, settings, Path(cache)) as media,
    ):
        context = Context(
            project=project,
            label_config=label_config,
            media=media,
            memo=Memo(model.memo_entries, model.memo_bytes),
        )
        batches = [
            [_as_task(t) for t in tasks[start : start + chunk]]
            for start in range(0, len(tasks), chunk)
        ]

        async def call(batch: list[Task]) -> list[Entry]:
            output = model.predict(batch, context)
            if model.predicts_async():
                output = await output  # type: ignore[misc]
            return normalize(output, len(batch), model_version=model.model_version, source=source)

        async def take(batch: list[Task]) -> None:
            entries = await split_on_oom(
                call,
                batch,
                oom_errors=model.oom_errors,
                source=source,
                metrics=Metrics(),
                mode="offline",
            )
            for entry in entries:
                if is_oom_entry(entry):
                    outcome.failed[len(outcome.entries)] = str(entry["detail"])
                    entry = {"result": []}  # no prediction: written without one
                found = _problems(label_config, entry) if label_config else []
                if found:
                    outcome.problems[len(outcome.entries)] = found
                outcome.entries.append(entry)
            progress(len(batch))

        if model.predicts_async():

            async def run_all() -> None:  # one event loop for every call, as when served
                for batch in batches:
                    await take(batch)

            asyncio.run(run_all())
        else:  # no event loop around a sync predict, as in the server's model threads
            for batch in batches:
                _finish(take(batch))
    return outcome


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
