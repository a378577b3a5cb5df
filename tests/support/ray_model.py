"""A model for the Ray serving tests: every answer says which process made it.

`predict` scores each task with its process id, so a test sees which replica answered inline
and which process predicted a background job; `fit` appends its process id to the file named
by `RELAXML_TEST_FITS` (when set), so a test counts the runs and sees where they ran.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from relaxml import Context, LabelStudioModel, Prediction, Task, TrainingEvent


class Where(LabelStudioModel):
    """Scores every task with its process id; each `fit` makes version `where-<fits>`."""

    model_version = "where-0"

    def __init__(self) -> None:
        if os.environ.get("RELAXML_TEST_FAIL_INIT"):
            raise RuntimeError("this model cannot load its weights")
        self.fits = 0

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[], score=float(os.getpid())) for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        fits = os.environ.get("RELAXML_TEST_FITS")
        if fits:
            with open(fits, "a", encoding="utf-8") as out:
                out.write(f"{os.getpid()}\n")
        self.fits += 1
        return f"where-{self.fits}"

    def save(self, path: Path) -> None:
        (path / "fits.json").write_text(json.dumps(self.fits), encoding="utf-8")

    def load(self, path: Path) -> None:
        self.fits = json.loads((path / "fits.json").read_text(encoding="utf-8"))
