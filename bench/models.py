"""The relaxml models the suite serves: `relaxml serve bench/models.py:Trivial`."""

from __future__ import annotations

from typing import Any

import trivial

from relaxml import Context, LabelStudioModel, Task


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
