"""A model for the multi-worker test: each `fit` appends a line to `RELAXML_TEST_FITS`."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from relaxml import Context, LabelStudioModel, Prediction, Project, Task, TrainingEvent


class Tally(LabelStudioModel):
    model_version = "tally-0"

    def __init__(self) -> None:
        self.fits = 0

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[], score=float(self.fits)) for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        time.sleep(float(os.environ.get("RELAXML_TEST_FIT_SECONDS", "0")))
        with open(os.environ["RELAXML_TEST_FITS"], "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {event.coalesced}\n")
        self.fits += 1
        return f"tally-{self.fits}"

    def save(self, path: Path) -> None:
        (path / "fits.json").write_text(json.dumps(self.fits))

    def load(self, path: Path) -> None:
        self.fits = json.loads((path / "fits.json").read_text())


class Memo(LabelStudioModel):
    """Trains without save or load: relaxml pickles its attributes for the other worker."""

    model_version = "memo-0"

    def __init__(self) -> None:
        self.fits = 0

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[], score=float(self.fits)) for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        self.fits += 1
        return f"memo-{self.fits}"


class ProjectTally(LabelStudioModel):
    """One instance per project: `fit` counts that project's runs; every answer names the
    project its instance was set up for, and its count."""

    model_version = "project-0"
    per_project = True

    def __init__(self) -> None:
        self.fits = 0
        self.project: int | None = None
        self.trained_for: int | None = None

    def setup(self, project: Project) -> None:
        self.project = project.id

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        seen = context.project.id
        assert self.project == seen, (self.project, seen)  # the project's own instance
        assert self.trained_for in (None, seen), (self.trained_for, seen)
        return [Prediction(result=[], score=float(self.fits)) for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        fits = os.environ.get("RELAXML_TEST_FITS")
        if fits:
            with open(fits, "a", encoding="utf-8") as out:
                out.write(f"{os.getpid()} {event.project_id}\n")
        self.fits += 1
        self.trained_for = event.project_id
        return f"p{event.project_id}-{self.fits}"

    def save(self, path: Path) -> None:
        (path / "state.json").write_text(json.dumps([self.fits, self.trained_for]))

    def load(self, path: Path) -> None:
        self.fits, self.trained_for = json.loads((path / "state.json").read_text())
