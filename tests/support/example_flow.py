"""The active-learning loop an example goes through against the real Label Studio.

Each `test_example_<name>_e2e.py` uses these steps: create a project with the example's own
`label_config.xml`, import or upload its tasks, serve `examples/<name>/model.py` with
`relaxml serve`, Retrieve Predictions (one stored per task, of the serving version), annotate
through the API, Start Training, and Retrieve again under the new version.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..conftest import wait_for
from .labelstudio import LabelStudio
from .processes import BackendFactory, BackendProcess

ROOT = Path(__file__).resolve().parents[2]


def label_config(name: str) -> str:
    """The example's `label_config.xml`."""
    return (ROOT / "examples" / name / "label_config.xml").read_text()


@dataclass
class ExampleProject:
    """A Label Studio project connected to an example served by `relaxml serve`."""

    ls: LabelStudio
    project_id: int
    backend: BackendProcess
    ml_id: int

    def health(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(self.backend.url + "/health", timeout=5).json()
        return answer

    def retrieve(self, task_ids: list[int], timeout: float = 60) -> dict[int, dict[str, Any]]:
        """Run Retrieve Predictions on `task_ids`; return the prediction of the serving version
        for each of them, once every one is stored (exactly one per task and version)."""
        version = self.health()["model_version"]
        self.ls.retrieve_predictions(self.project_id, task_ids)

        def stored() -> dict[int, dict[str, Any]] | None:
            found = predictions(self.ls, self.project_id, version)
            return found if set(task_ids) <= found.keys() else None

        found: dict[int, dict[str, Any]] = wait_for(stored, timeout, interval=0.2)
        return {task_id: found[task_id] for task_id in task_ids}

    def train(self, timeout: float = 120) -> str:
        """Press Start Training; wait until the backend serves a new version and return it."""
        before = self.health()["model_version"]
        self.ls.train(self.ml_id)

        def version() -> str | None:
            current = str(self.health()["model_version"])
            return current if current != before else None

        new: str = wait_for(version, timeout, interval=0.2)
        runs = requests.get(self.backend.url + "/jobs", timeout=5).json()["training"]
        assert runs[0]["state"] == "succeeded", runs[0]
        return new


def predictions(ls: LabelStudio, project_id: int, version: str) -> dict[int, dict[str, Any]]:
    """The stored predictions of `version` by task; fails if a task has two of them."""
    found: dict[int, dict[str, Any]] = {}
    for prediction in ls.list_predictions(project_id=project_id):
        if prediction["model_version"] != version:
            continue
        assert prediction["task"] not in found, f"task {prediction['task']}: two of {version}"
        found[prediction["task"]] = prediction
    return found


def upload(ls: LabelStudio, project_id: int, name: str, data: bytes, mime: str) -> int:
    """Upload one file as a new task of the project (as the Import dialog does); its id."""
    before = set(task_ids(ls, project_id))
    ls.api("POST", f"/api/projects/{project_id}/import", files={"file": (name, data, mime)})
    (task_id,) = set(task_ids(ls, project_id)) - before
    return task_id


def task_ids(ls: LabelStudio, project_id: int) -> list[int]:
    """The ids of the project's tasks, in order."""
    params = {"project": project_id, "page_size": 1000}
    tasks = ls.api("GET", "/api/tasks", params=params).json()["tasks"]
    return sorted(task["id"] for task in tasks)


def serve_example(
    ls: LabelStudio,
    factory: BackendFactory,
    port: int,
    project_id: int,
    target: str,
    env: dict[str, str] | None = None,
) -> ExampleProject:
    """Serve `target` (`examples/<name>/model.py:Class`) with Label Studio's key and URL,
    training on Start Training only, and connect it to the project."""
    argv = [sys.executable, "-m", "relaxml", "serve", target, "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    environment = {
        "PYTHONPATH": str(ROOT),
        "LABEL_STUDIO_API_KEY": ls.token,
        "LABEL_STUDIO_URL": ls.url,
        "RELAXML_TRAIN_ON": "START_TRAINING",
        **(env or {}),
    }
    backend = factory(argv, environment, port)
    ml = ls.register_ml_backend(project_id, backend.url)
    return ExampleProject(ls, project_id, backend, ml["id"])
