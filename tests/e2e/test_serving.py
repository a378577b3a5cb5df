"""relaxml served by `relaxml serve`, driven by a real Label Studio 1.23.2."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..conftest import wait_for as shared_wait_for
from ..support.labelstudio import ApiError, LabelStudio
from ..support.processes import BackendFactory, BackendProcess

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sentiment"
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
TASKS = json.loads((EXAMPLE / "tasks.json").read_text())


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
    """The suite's `wait_for`, polling a real server every 0.1 s."""
    return shared_wait_for(predicate, timeout, interval=0.1)


def serve(
    factory: BackendFactory, port: int, target: str, *args: str, env: dict[str, str] | None = None
) -> BackendProcess:
    argv = [sys.executable, "-m", "relaxml", "serve", target, "--host", "127.0.0.1"]
    argv += ["--port", str(port), *args]
    return factory(argv, {"PYTHONPATH": str(ROOT), **(env or {})}, port)


def predict_calls(backend: BackendProcess) -> int:
    return backend.log_path.read_text().count("POST /predict 200")


def project_with_tasks(ls: LabelStudio, title: str) -> tuple[int, list[int]]:
    project = ls.create_project(title, LABEL_CONFIG)
    return project["id"], ls.import_tasks(project["id"], TASKS)


def test_example_connects_predicts_and_learns(label_studio, backend_factory, free_port):
    ls = label_studio
    project_id, task_ids = project_with_tasks(ls, "relaxml example")
    backend = serve(backend_factory, free_port, "examples/sentiment/model.py:NaiveBayesSentiment")

    ml = ls.register_ml_backend(project_id, backend.url)
    assert ls.get_ml_backend(ml["id"])["state"] == "CO"

    # Opening a task stores the inline prediction with the model's version.
    task = ls.get_task(task_ids[0])
    assert [p["model_version"] for p in task["predictions"]] == ["nb-0"]
    assert task["predictions"][0]["result"][0]["value"]["choices"] == ["positive"]

    # Retrieve Predictions over all tasks: one prediction per task.
    ls.retrieve_predictions(project_id)
    predictions = ls.list_predictions(project_id=project_id)
    assert sorted(p["task"] for p in predictions) == sorted(task_ids)
    assert {p["model_version"] for p in predictions} == {"nb-0"}
    for prediction in predictions:
        assert isinstance(prediction["score"], float)
        assert prediction["result"][0]["from_name"] == "sentiment"

    # A second Retrieve is a no-op: no /predict call, no new prediction.
    calls = predict_calls(backend)
    ls.retrieve_predictions(project_id)
    assert predict_calls(backend) == calls
    assert len(ls.list_predictions(project_id=project_id)) == len(task_ids)

    # An annotation reaches fit through the event webhook; the new version re-predicts.
    negative = {
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": ["negative"]},
    }
    ls.create_annotation(task_ids[5], [negative])  # "The screen cracked after two days"
    wait_for(lambda: backend_health(backend)["model_version"] == "nb-1")
    ls.retrieve_predictions(project_id)
    new = [p for p in ls.list_predictions(project_id=project_id) if p["model_version"] == "nb-1"]
    assert sorted(p["task"] for p in new) == sorted(task_ids)
    relabelled = next(p for p in new if p["task"] == task_ids[5])
    assert relabelled["result"][0]["value"]["choices"] == ["negative"]


def backend_health(backend: BackendProcess) -> dict[str, Any]:
    import requests

    return dict(requests.get(backend.url + "/health", timeout=2).json())


def test_start_training_reaches_fit(label_studio, backend_factory, free_port, tmp_path):
    ls = label_studio
    project_id, _ = project_with_tasks(ls, "relaxml training")
    events = tmp_path / "events.jsonl"
    backend = serve(
        backend_factory,
        free_port,
        "tests/support/recording_model.py:Recorder",
        env={"RELAXML_TEST_EVENTS": str(events)},
    )
    ml = ls.register_ml_backend(project_id, backend.url)
    started = time.monotonic()
    ls.train(ml["id"])
    assert time.monotonic() - started < 2  # the webhook is answered at once

    def recorded() -> list[dict[str, Any]]:
        if not events.exists():
            return []
        lines = events.read_text().splitlines()
        return [json.loads(line) for line in lines if "START_TRAINING" in line]

    [record] = wait_for(recorded)
    assert record == {"action": "START_TRAINING", "project_id": project_id, "annotations": 0}


def test_interactive_prediction(label_studio, backend_factory, free_port, tmp_path):
    ls = label_studio
    project_id, task_ids = project_with_tasks(ls, "relaxml interactive")
    backend = serve(
        backend_factory,
        free_port,
        "tests/support/recording_model.py:Recorder",
        env={"RELAXML_TEST_EVENTS": str(tmp_path / "events.jsonl")},
    )
    ml = ls.register_ml_backend(project_id, backend.url, is_interactive=True)
    context = {
        "result": [
            {
                "id": "u1",
                "from_name": "sentiment",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["positive"]},
            }
        ]
    }
    answer = ls.api(
        "POST",
        f"/api/ml/{ml['id']}/interactive-annotating",
        json={"task": task_ids[0], "context": context},
    ).json()
    assert answer["data"]["result"][0]["value"]["choices"] == ["negative"]
    assert answer["data"]["model_version"] == "recorder-1"


def test_basic_auth_set_in_label_studio(label_studio, backend_factory, free_port):
    ls = label_studio
    project_id, task_ids = project_with_tasks(ls, "relaxml basic auth")
    backend = serve(
        backend_factory,
        free_port,
        "examples/sentiment/model.py:NaiveBayesSentiment",
        "--basic-auth-user",
        "labelstudio",
        env={"RELAXML_BASIC_AUTH_PASS": "correct horse battery"},
    )

    # Without credentials, and with wrong ones, Label Studio cannot connect.
    with pytest.raises(ApiError) as refused:
        ls.register_ml_backend(project_id, backend.url)
    assert refused.value.response.status_code == 400
    with pytest.raises(ApiError) as wrong:
        ls.register_ml_backend(project_id, backend.url, basic_auth=("labelstudio", "wrong"))
    assert "authentication" in wrong.value.response.text.lower()

    # With the right ones it connects and predictions flow.
    ml = ls.register_ml_backend(
        project_id, backend.url, basic_auth=("labelstudio", "correct horse battery")
    )
    assert ls.get_ml_backend(ml["id"])["state"] == "CO"
    task = ls.get_task(task_ids[1])
    assert [p["model_version"] for p in task["predictions"]] == ["nb-0"]
    assert "correct horse battery" not in backend.log_path.read_text()
