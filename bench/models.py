"""The relaxml models the suite serves: `relaxml serve bench/models.py:Trivial`."""

from __future__ import annotations

import time
from typing import Any

import trivial

from relaxml import Context, LabelStudioModel, Task, TrainingEvent


class Trivial(LabelStudioModel):
    """One `choices` region per task, computed by `trivial.label`."""

    model_version = trivial.MODEL_VERSION

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        return [{"result": [trivial.label(t.id, t.data)], "score": trivial.SCORE} for t in tasks]


class Slow(Trivial):
    """200 ms per task, waiting with the GIL released (like native inference code)."""

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        trivial.slow_wait(len(tasks))
        return super().predict(tasks, context)


class SlowCPU(Trivial):
    """200 ms per task of pure-Python computing that holds the GIL."""

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        trivial.slow_spin(len(tasks))
        return super().predict(tasks, context)


class Loaded(LabelStudioModel):
    """The trivial model, after loading "weights" in its constructor (`trivial.load_table`).

    relaxml constructs it once, when the server starts.
    """

    model_version = trivial.MODEL_VERSION

    def __init__(self) -> None:
        self.table = trivial.load_table()

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        return [trivial.loaded_prediction(self.table, t.id, t.data) for t in tasks]


class Batched(Trivial):
    """20 ms per call plus 0.2 ms per task, GIL released; relaxml's defaults (no batching)."""

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        trivial.batch_wait(len(tasks))
        return super().predict(tasks, context)


class MicroBatched(Batched):
    """The same model with micro-batching on: requests wait up to 10 ms to share one call of
    at most 32 tasks."""

    max_batch_size = 32
    batch_timeout = 0.01


class MicroBatched64(MicroBatched):
    """Micro-batching with calls of up to 64 tasks."""

    max_batch_size = 64


class Trainable(Trivial):
    """The trivial model with a `fit` that keeps its version (bench/soak.py's model).

    Annotation webhooks start training runs; each returns at once without a new version.
    """

    def fit(self, event: TrainingEvent) -> str | None:
        return None


class TrivialAsync(LabelStudioModel):
    """`Trivial` written `async def`: relaxml runs it on the event loop, no thread hop."""

    model_version = trivial.MODEL_VERSION

    async def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        return [{"result": [trivial.label(t.id, t.data)], "score": trivial.SCORE} for t in tasks]


class Bulk5ms(Trivial):
    """5 ms per task, waiting with the GIL released; bulk requests go to the background."""

    delivery = "background"

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        time.sleep(0.005 * len(tasks))  # releases the GIL, as native inference code does
        return super().predict(tasks, context)
