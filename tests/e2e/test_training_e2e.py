"""Active learning against a real Label Studio: annotate, train, re-predict."""

from __future__ import annotations

from typing import Any

import requests

from ..support.labelstudio import LabelStudio
from .test_serving import TASKS, project_with_tasks, serve, wait_for

EXAMPLE = "examples/sentiment/model.py:NaiveBayesSentiment"


def choice(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def get(backend: Any, path: str) -> Any:
    return requests.get(backend.url + path, timeout=5).json()


def predicted(ls: LabelStudio, project_id: int, version: str) -> dict[int, str]:
    return {
        p["task"]: p["result"][0]["value"]["choices"][0]
        for p in ls.list_predictions(project_id=project_id)
        if p["model_version"] == version
    }


def test_start_training_trains_on_the_annotations_and_re_predicts(
    label_studio, backend_factory, free_port, tmp_path
):
    ls = label_studio
    project_id, task_ids = project_with_tasks(ls, "relaxml active learning")
    backend = serve(
        backend_factory,
        free_port,
        EXAMPLE,
        env={
            "RELAXML_DATA_DIR": str(tmp_path),
            "LABEL_STUDIO_API_KEY": ls.token,
            "LABEL_STUDIO_URL": ls.url,
            "RELAXML_TRAIN_ON": "START_TRAINING",  # annotation events alone do not train here
        },
    )
    ml = ls.register_ml_backend(project_id, backend.url)
    ls.retrieve_predictions(project_id)
    before = predicted(ls, project_id, "nb-0")
    assert len(before) == len(task_ids)
    # "The delivery was quick and the box was nice" reads positive to the seed lexicon;
    # the annotators disagree, and say the cracked screen is positive too.
    flipped = {task_ids[2]: "negative", task_ids[5]: "positive"}
    assert before[task_ids[2]] == "positive"
    for task_id, label in flipped.items():
        ls.create_annotation(task_id, choice(label))
    assert get(backend, "/health")["model_version"] == "nb-0"

    ls.train(ml["id"])
    wait_for(lambda: get(backend, "/health")["model_version"] == "nb-1", timeout=30)
    runs = get(backend, "/jobs")["training"]
    assert runs[0]["state"] == "succeeded"
    assert runs[0]["annotations"] == 2  # exactly the annotations made above
    assert runs[0]["version"] == "nb-1"
    versions = get(backend, "/versions")
    assert versions["versions"] == ["nb-0", "nb-1"]
    assert versions["current"] == "nb-1"

    ls.retrieve_predictions(project_id)
    after = predicted(ls, project_id, "nb-1")
    assert len(after) == len(task_ids)
    for task_id, label in flipped.items():
        assert after[task_id] == label, TASKS[task_ids.index(task_id)]


def test_min_annotations_to_start_training_trains_on_its_own(
    label_studio, backend_factory, free_port, tmp_path
):
    ls = label_studio
    project_id, task_ids = project_with_tasks(ls, "relaxml auto training")
    ls.api("PATCH", f"/api/projects/{project_id}", json={"min_annotations_to_start_training": 1})
    backend = serve(
        backend_factory,
        free_port,
        EXAMPLE,
        env={
            "RELAXML_DATA_DIR": str(tmp_path),
            "LABEL_STUDIO_API_KEY": ls.token,
            "LABEL_STUDIO_URL": ls.url,
        },
    )
    ls.register_ml_backend(project_id, backend.url)
    ls.create_annotation(task_ids[0], choice("negative"))
    wait_for(lambda: get(backend, "/health")["model_version"] != "nb-0", timeout=30)
    actions = {run["action"] for run in get(backend, "/jobs")["training"]}
    assert "START_TRAINING" in actions
