"""`ModelCall`: one call of the model's `predict`, as every path makes it.

Inline requests, micro-batches and background jobs all come here: the project's instance
(`ModelRouter`), the scheduler's threads (sync) or the loop (async), the pace of background
batches, out-of-memory splitting (`relaxml._oom`), the output normalized and checked against the
label config, and refusals logged at most once a minute per kind of mistake.

A sync call the last one says is short is waited for by the loop itself (`short_wait`,
`threads.SHORT_WAIT`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from typing import Any

from .._delivery.pace import Pace
from .._metrics import Metrics
from .._oom import is_oom_entry, split_on_oom
from .._throttle import LogThrottle
from .._training.versions import ALL_PROJECTS
from ..context import Context
from ..errors import Failure, ModelError, ModelOutputError, describe
from ..model import LabelStudioModel
from ..prediction import Entry, json_safe, normalize
from ..protocol import Task
from .outputcheck import OutputCheck
from .routing import ModelRouter
from .scheduler import Scheduler
from .threads import SHORT_WAIT

logger = logging.getLogger(__name__)


class ModelCall:
    """Runs the model on tasks for every path of a served model."""

    def __init__(
        self,
        router: ModelRouter,
        scheduler: Scheduler,
        pace: Pace,
        metrics: Metrics,
        output_check: OutputCheck,
        name: str,
    ) -> None:
        self.router = router
        self.scheduler = scheduler
        self.pace = pace
        self.metrics = metrics
        self.output_check = output_check
        self.name = name
        self._output_log = LogThrottle()
        self._async: dict[type[LabelStudioModel], bool] = {}  # predicts_async, per class
        self._last: tuple[int, float] = (1, math.inf)  # the last sync call: tasks, seconds

    async def run(
        self, tasks: list[Task], context: Context, *, mode: str = "inline"
    ) -> list[Entry]:
        """`predict` on `tasks` through the scheduler, its output normalized and checked; a
        call that runs out of memory is split in halves (`_oom.split_on_oom`), and a task that
        runs out of memory alone gets an `out_of_memory` entry."""
        key = self.router.key(context.project)
        keeper = await self.router.keeper_for(key)
        model, version = keeper.model, keeper.model.model_version
        if keeper.memo is not None and context.memo is not keeper.memo:
            context = dataclasses.replace(context, memo=keeper.memo)
        interactive = context.is_interactive
        if interactive:
            self.pace.note_interactive()
        source = f"{self.name}.predict"
        predicts_async = self._async.get(type(model))
        if predicts_async is None:
            predicts_async = self._async[type(model)] = model.predicts_async()
        answered = 0  # tasks the model answered: all of them, unless a call ran out of memory

        async def call(batch: list[Task]) -> list[Entry]:
            nonlocal answered
            if predicts_async:
                output = await self.scheduler.run_async(model.predict, batch, context)
            else:
                output = await self.scheduler.run_sync(
                    self._timed,
                    model,
                    batch,
                    context,
                    urgent=interactive,
                    wait=self.short_wait(len(batch)),
                )
            entries = normalize(
                output,
                len(batch),
                model_version=version,
                source=source,
                check_json=False,  # the answer is checked when it is serialized
            )
            answered += len(batch)
            return entries

        try:
            entries = await split_on_oom(
                call,
                tasks,
                oom_errors=model.oom_errors,
                source=source,
                metrics=self.metrics,
                mode=mode,
            )
        except ModelOutputError as error:
            raise self._refused(error) from None
        except Failure:
            raise
        except Exception as exc:
            logger.error("%s.predict raised on %d tasks", self.name, len(tasks), exc_info=exc)
            raise ModelError(f"{self.name}.predict raised {describe(exc)}") from None
        if key != ALL_PROJECTS:
            self.metrics.inc("relaxml_project_predictions_total", len(tasks), project=key)
        try:
            if context.label_config and answered == len(tasks):
                self.output_check(tasks, entries, context.label_config)
            elif context.label_config:  # leave out the tasks that ran out of memory alone
                kept = [i for i, entry in enumerate(entries) if not is_oom_entry(entry)]
                self.output_check(
                    [tasks[i] for i in kept], [entries[i] for i in kept], context.label_config
                )
        except ModelOutputError as error:
            raise self._refused(error) from None
        return entries

    def _timed(self, model: LabelStudioModel, tasks: list[Task], context: Context) -> Any:
        """`model.predict` in a model thread, its time per task noted for the pace of
        background batches."""
        started = time.perf_counter()
        try:
            return model.predict(tasks, context)
        finally:
            seconds = time.perf_counter() - started
            self.pace.record(len(tasks), seconds)
            self._last = (len(tasks), seconds)

    def short_wait(self, tasks: int) -> float:
        """`SHORT_WAIT` if a sync call on `tasks` tasks should return within it, else 0.

        Judged by the last call, its cost taken to grow with the tasks and never to shrink
        (a model's fixed cost per call does not shrink with fewer tasks). A wrong guess
        costs the loop at most `SHORT_WAIT`, once: the next call is judged by this one.
        """
        count, seconds = self._last
        return SHORT_WAIT if seconds * max(1.0, tasks / count) <= SHORT_WAIT else 0.0

    async def run_stored(self, tasks: list[Task], context: Context) -> list[Entry]:
        """`run` for background predictions, stored as JSON before they are sent."""
        return self.json_safe(await self.run(tasks, context, mode="background"))

    def json_safe(self, entries: list[Entry]) -> list[Entry]:
        """`prediction.json_safe` for this model's entries; a refusal is logged."""
        try:
            return json_safe(entries, f"{self.name}.predict")
        except ModelOutputError as error:
            raise self._refused(error) from None

    def _refused(self, error: ModelOutputError) -> ModelOutputError:
        """Log why the model's output was refused (the text of the answer), at most once a
        minute per kind of mistake; return `error` to raise."""
        kind = " ".join(re.sub(r"\d+", "", error.detail).split()[:6])
        if self._output_log.allow(kind):
            logger.error("%s (logged once a minute for this kind of mistake)", error.detail)
        return error
