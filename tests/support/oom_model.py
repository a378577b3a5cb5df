"""A model for out-of-memory tests in real server processes: its `predict` raises an error that
looks like torch's `torch.cuda.OutOfMemoryError` (without torch) above 2 tasks, and on a task
whose data says `huge` even alone."""

from __future__ import annotations

from relaxml import Context, LabelStudioModel, Prediction, Task

LIMIT = 2


class OutOfMemoryError(RuntimeError):
    """Named and placed as torch's, which relaxml recognises by name and module."""


OutOfMemoryError.__module__ = "torch.cuda"


class Greedy(LabelStudioModel):
    model_version = "greedy-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        if len(tasks) > LIMIT or any(t.data.get("huge") for t in tasks):
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        choice = {"from_name": "c", "to_name": "t", "type": "choices"}
        return [Prediction(result=[{**choice, "value": {"choices": [str(t.id)]}}]) for t in tasks]
