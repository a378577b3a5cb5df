"""`Annotator`: a model over every task of a Label Studio project that lacks its predictions.

Which tasks are done is decided by Label Studio alone: a task with a stored prediction of the
model's current version is skipped (from `GET /api/predictions/?project=` at the start, and the
task's own `predictions` as its page arrives). Tasks come page by page; the others are predicted
in blocks of `import_size` (by `run_model`, as the server calls the model) and each block is
imported in one bulk request. A run killed at any point resumes from what Label Studio holds:
it loses at most the block in flight, never stores a prediction twice. An import whose answer
is lost (an error, a timeout) is retried only for the tasks that Label Studio, asked again,
does not hold yet.

A block whose `predict` raises is predicted task by task; a task that raises alone, runs out of
memory alone, has a prediction that does not fit the label config, or that Label Studio refuses,
or whose predictions all name another `model_version` than the model's (a next run could not
tell it is done), is counted failed with its reason and the rest goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..labelstudio.client import LabelStudioClient, LabelStudioError
from ..model import LabelStudioModel
from ..settings import Settings
from .runner import run_model

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


class Annotator:
    """Predicts, with `model`, every task of project `project_id` lacking its prediction."""

    def __init__(
        self,
        client: LabelStudioClient,
        project_id: int,
        model: LabelStudioModel,
        settings: Settings,
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
        self.model = model
        self.settings = settings
        self.import_size = max(1, import_size)
        self.page_size = page_size
        self.attempts = max(1, attempts)
        self.progress = progress
        self._sleep = sleep
        self.version = model.model_version
        self.summary = Summary()
        self.label_config: str | None = None

    def count(self) -> int:
        """How many tasks the project has (Label Studio's `total`); its label config read."""
        self._read_project()
        body = self._get("api/tasks", {"project": self.project_id, "page": 1, "page_size": 1})
        return int(body.get("total", 0)) if isinstance(body, dict) else len(body)

    def run(self) -> Summary:
        """Predict and store every task that lacks a prediction of the model's version."""
        if self.label_config is None:
            self._read_project()
        stored = self._stored()
        block: list[dict[str, Any]] = []
        for task in self._tasks():
            if task["id"] in stored or self._has_version(task):
                self.summary.skipped += 1
                self.progress(1)
                continue
            block.append(task)
            if len(block) >= self.import_size:
                self._block(block)
                block = []
        if block:
            self._block(block)
        return self.summary

    def _read_project(self) -> None:
        project = self._get(f"api/projects/{self.project_id}/", None)
        self.label_config = project.get("label_config") if isinstance(project, dict) else None

    def _get(self, path: str, params: dict[str, Any] | None) -> Any:
        try:
            return self.client.request("GET", path, params=params).json()
        except LabelStudioError as exc:
            raise AnnotateError(f"Label Studio: {exc}") from None

    def _tasks(self) -> Iterator[dict[str, Any]]:
        """Every task of the project, a page at a time."""
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

    def _stored(self) -> set[int]:
        """The tasks of the project Label Studio holds a prediction of this version for."""
        found = self._get("api/predictions/", {"project": self.project_id})
        if not isinstance(found, list):
            return set()
        return {
            p["task"]
            for p in found
            if isinstance(p, dict) and p.get("model_version") == self.version
        }

    def _block(self, tasks: list[dict[str, Any]]) -> None:
        predictions: dict[int, list[dict[str, Any]]] = {}
        self._predict(tasks, predictions)
        if predictions:
            self._deliver(predictions)

    def _predict(
        self,
        tasks: list[dict[str, Any]],
        into: dict[int, list[dict[str, Any]]],
        *,
        reported: bool = False,
    ) -> None:
        """Predict `tasks` together, or one by one when that raises; results go `into`.
        With `reported`, their progress was reported already."""
        counted = 0

        def progress(n: int) -> None:
            nonlocal counted
            counted += n
            if not reported:
                self.progress(n)

        try:
            outcome = run_model(self.model, tasks, self.label_config, self.settings, progress)
        except Exception as exc:  # the user's predict: find the task that raises
            if len(tasks) == 1:
                self.summary.failed[tasks[0]["id"]] = f"predict raised {type(exc).__name__}: {exc}"
                if not (reported or counted):
                    self.progress(1)
                return
            for index, task in enumerate(tasks):  # the chunks predicted before were reported
                self._predict([task], into, reported=reported or index < counted)
            return
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

    def _deliver(self, predictions: dict[int, list[dict[str, Any]]]) -> None:
        """Import `predictions` in one request; after a failure, send again only what Label
        Studio does not hold yet; a refused import is sent task by task."""
        last: LabelStudioError | None = None
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(min(30.0, 2.0**attempt))
                stored = self._stored()  # the failed import may have been stored all the same
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
