"""Small models the tests serve. Each one does something real and observable."""

from __future__ import annotations

import threading
from typing import Any

from relaxml import Context, LabelStudioModel, Prediction, Task, TrainingEvent


def choice(task: Task, label: str = "positive", score: float = 0.9) -> dict[str, Any]:
    """A one-region choices result for `task`."""
    return {
        "id": f"r{task.id}",
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [label]},
        "score": score,
    }


class Echo(LabelStudioModel):
    """Predicts one choice per task and records every call it gets."""

    model_version = "echo-1"
    instances = 0

    def __init__(self) -> None:
        type(self).instances += 1
        self.calls: list[tuple[list[int], Context]] = []
        self.setups: list[Any] = []

    def setup(self, project: Any) -> None:
        self.setups.append(project)

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        self.calls.append(([t.id for t in tasks], context))
        return [Prediction(result=[choice(t)]) for t in tasks]


class Trainable(Echo):
    """Echo plus a `fit` that records events and can be held on a gate."""

    model_version = "train-0"

    def __init__(self) -> None:
        super().__init__()
        self.events: list[TrainingEvent] = []
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()
        self.fail_with: Exception | None = None

    def fit(self, event: TrainingEvent) -> str | None:
        self.started.set()
        self.gate.wait(10)
        self.events.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        return f"train-{len(self.events)}"

    def __getstate__(self) -> dict[str, Any]:
        """What a trained version keeps (relaxml pickles it: no save/load): the event count."""
        return {"trained_events": len(self.events)}


class Scripted(LabelStudioModel):
    """Returns whatever `output` holds (or raises it), to test output checks."""

    output: Any = None

    def predict(self, tasks: list[Task], context: Context) -> Any:
        if isinstance(self.output, BaseException):
            raise self.output
        return self.output(tasks) if callable(self.output) else self.output


class Slow(LabelStudioModel):
    """Blocks in `predict` until released, to test responsiveness and overload."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()

    def predict(self, tasks: list[Task], context: Context) -> list[None]:
        self.entered.set()
        self.release.wait(10)
        return [None] * len(tasks)


class AsyncEcho(LabelStudioModel):
    """An `async def predict`."""

    async def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        return [{"result": [choice(t, "negative")], "score": 0.5} for t in tasks]
