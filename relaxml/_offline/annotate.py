"""`Annotator`: a model over every task of a Label Studio project that lacks its predictions.

Which tasks are done is decided by Label Studio alone: a task with a stored prediction of the
model's current version is skipped. Tasks come page by page (`GET /api/tasks` with
`fields=all`, so each page holds its tasks' predictions: nothing reads every prediction of the
project at once, and a project of any size is read in pages of `page_size`). The others go to an
`Engine` (`local_engine`: this process; `relaxml._ray`: Ray Data), which predicts them as the
server calls the model (`ModelRun`) and hands them back in blocks of `import_size`; each block
is imported in one bulk request by the one writer here. A run killed at any point resumes from
what Label Studio holds: it loses at most the blocks in flight, never stores a prediction twice.
An import whose answer is lost (an error, a timeout) is retried only for the tasks that Label
Studio, asked again about each task of the import, does not hold yet.

A chunk whose `predict` raises is split down to the tasks that raise alone (`ModelRun`); a task
that raises alone, runs out of memory alone, has a prediction that does not fit the label
config, or that Label Studio refuses, or whose predictions all name another `model_version` than
the model's (a next run could not tell it is done), is counted failed with its reason and the
rest goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..labelstudio.client import LabelStudioClient, LabelStudioError
from ..model import LabelStudioModel
from ..settings import Settings
from .runner import ModelRun, Outcome

PERMANENT = frozenset({400, 404, 422})  # Label Studio will never accept these as they are
IMPORT_SIZE = 500
PAGE_SIZE = 100


class AnnotateError(Exception):
    """Label Studio could not be reached or kept failing: the run stops (run again to resume)."""


@dataclass
class Summary:
    """What a run did: tasks predicted and stored, skipped as already predicted, and failed."""

    done: int = 0
    skipped: int = 0
    failed: dict[int, str] = field(default_factory=dict)
    """The reason of each failed task, by task id."""
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Tasks predicted and stored per second since the start."""
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def line(self) -> str:
        """The one-line summary: done, skipped, failed, rate."""
        seconds = time.monotonic() - self.started
        return (
            f"{self.done} predicted, {self.skipped} skipped (already predicted), "
            f"{len(self.failed)} failed in {seconds:.1f} s ({self.rate:.1f} tasks/s)"
        )


class Engine(Protocol):
    """Predicts `tasks` as they come and hands them back in blocks of about `block` tasks,
    each with its `Outcome`; `progress(n)` after n more tasks are predicted."""

    def __call__(
        self,
        tasks: Iterator[dict[str, Any]],
        label_config: str | None,
        block: int,
        progress: Callable[[int], None],
    ) -> Iterable[tuple[list[dict[str, Any]], Outcome]]:
        """The blocks, each with its outcome."""
        ...


def local_engine(model: LabelStudioModel, settings: Settings) -> Engine:
    """The engine of `--engine local`: `model`, set up once, in this process."""

    def predict(
        tasks: Iterator[dict[str, Any]],
        label_config: str | None,
        block: int,
        progress: Callable[[int], None],
    ) -> Iterator[tuple[list[dict[str, Any]], Outcome]]:
        with ModelRun(model, label_config, settings) as run:
            for part in blocks(tasks, block):
                yield part, run.predict(part, progress)

    return predict


def blocks(items: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    """`items` in lists of `size` (the last one shorter)."""
    part: list[dict[str, Any]] = []
    for item in items:
        part.append(item)
        if len(part) >= size:
            yield part
            part = []
    if part:
        yield part


class Annotator:
    """Predicts every task of project `project_id` lacking a prediction of `version`."""

    def __init__(
        self,
        client: LabelStudioClient,
        project_id: int,
        version: str,
        *,
        import_size: int = IMPORT_SIZE,
        page_size: int = PAGE_SIZE,
        attempts: int = 5,
        progress: Callable[[int], None] = lambda n: None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`progress(n)` after n more tasks are predicted, skipped or failed; an import that
        fails is tried `attempts` times in all."""
        self.client = client
        self.project_id = project_id
        self.import_size = max(1, import_size)
        self.page_size = page_size
        self.attempts = max(1, attempts)
        self.progress = progress
        self._sleep = sleep
        self.version = version
        self.summary = Summary()
        self.label_config: str | None = None

    def count(self) -> int:
        """How many tasks the project has (Label Studio's `total`); its label config read."""
        self._read_project()
        body = self._get("api/tasks", {"project": self.project_id, "page": 1, "page_size": 1})
        return int(body.get("total", 0)) if isinstance(body, dict) else len(body)

    def run(self, engine: Engine) -> Summary:
        """Predict, with `engine`, and store every task that lacks a prediction of the
        version."""
        if self.label_config is None:
            self._read_project()
        done = engine(self.pending(), self.label_config, self.import_size, self.progress)
        for tasks, outcome in done:
            predictions = self._accept(tasks, outcome)
            if predictions:
                self._deliver(predictions)
        return self.summary

    def pending(self) -> Iterator[dict[str, Any]]:
        """The tasks of the project lacking a prediction of the version, page by page; the
        others are counted skipped."""
        for task in self._tasks():
            if self._has_version(task):
                self.summary.skipped += 1
                self.progress(1)
            else:
                yield task

    def _read_project(self) -> None:
        project = self._get(f"api/projects/{self.project_id}/", None)
        self.label_config = project.get("label_config") if isinstance(project, dict) else None

    def _get(self, path: str, params: dict[str, Any] | None) -> Any:
        try:
            return self.client.request("GET", path, params=params).json()
        except LabelStudioError as exc:
            raise AnnotateError(f"Label Studio: {exc}") from None

    def _tasks(self) -> Iterator[dict[str, Any]]:
        """Every task of the project, with its predictions, a page at a time."""
        page = 1
        while True:
            params = {
                "project": self.project_id, "page": page, "page_size": self.page_size,
                "fields": "all",
            }  # fmt: skip
            try:
                body = self.client.request("GET", "api/tasks", params=params).json()
            except LabelStudioError as exc:
                if exc.status_code == 404 and page > 1:  # past the last page
                    return
                raise AnnotateError(f"Label Studio: {exc}") from None
            tasks = body.get("tasks", []) if isinstance(body, dict) else body
            yield from (t for t in tasks if isinstance(t, dict) and isinstance(t.get("id"), int))
            if len(tasks) < self.page_size:
                return
            page += 1

    def _has_version(self, task: dict[str, Any]) -> bool:
        return any(
            isinstance(p, dict) and p.get("model_version") == self.version
            for p in task.get("predictions") or []
        )

    def _stored(self, task_ids: Iterable[int]) -> set[int]:
        """Which of `task_ids` Label Studio holds a prediction of the version for (one small
        request per task: this is asked only after an import whose answer was lost)."""
        found = set()
        for task_id in task_ids:
            stored = self._get("api/predictions/", {"task": task_id, "project": self.project_id})
            if isinstance(stored, list) and self._has_version({"predictions": stored}):
                found.add(task_id)
        return found

    def _accept(
        self, tasks: list[dict[str, Any]], outcome: Outcome
    ) -> dict[int, list[dict[str, Any]]]:
        """The predictions of `tasks` to store, by task id; the failed ones counted."""
        into: dict[int, list[dict[str, Any]]] = {}
        for index, (task, entry) in enumerate(zip(tasks, outcome.entries, strict=True)):
            if index in outcome.failed:
                self.summary.failed[task["id"]] = outcome.failed[index]
            elif index in outcome.problems:
                found = "; ".join(str(p) for p in outcome.problems[index])
                self.summary.failed[task["id"]] = f"does not fit the label config: {found}"
            else:
                predictions = entry if isinstance(entry, list) else [entry]
                if not self._has_version({"predictions": predictions}):
                    found = ", ".join(sorted({str(p.get("model_version")) for p in predictions}))
                    self.summary.failed[task["id"]] = (
                        f"its predictions name model_version {found}, not the model's "
                        f"{self.version}: a next run could not tell the task is done"
                    )
                    continue
                into[task["id"]] = predictions
        return into

    def _deliver(self, predictions: dict[int, list[dict[str, Any]]]) -> None:
        """Import `predictions` in one request; after a failure, send again only what Label
        Studio does not hold yet; a refused import is sent task by task."""
        last: LabelStudioError | None = None
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(min(30.0, 2.0**attempt))
                stored = self._stored(predictions)  # the failed import may be stored all the same
                self.summary.done += sum(1 for task_id in predictions if task_id in stored)
                predictions = {t: p for t, p in predictions.items() if t not in stored}
                if not predictions:
                    return
            payload = [{"task": t, **p} for t, ps in predictions.items() for p in ps]
            try:
                self.client.request(
                    "POST",
                    f"api/projects/{self.project_id}/import/predictions",
                    json=payload,
                    retry=False,
                )
            except LabelStudioError as exc:
                if exc.status_code not in PERMANENT:
                    last = exc
                    continue
                if len(predictions) > 1:
                    for task_id, one in predictions.items():
                        self._deliver({task_id: one})
                    return
                (task_id,) = predictions
                self.summary.failed[task_id] = f"Label Studio refused the prediction: {exc}"
                return
            self.summary.done += len(predictions)
            return
        raise AnnotateError(
            f"Label Studio did not take {len(predictions)} predictions after {self.attempts} "
            f"attempts ({last}); run again to resume"
        )
