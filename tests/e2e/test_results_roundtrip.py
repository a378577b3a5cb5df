"""Predictions built with each builder are stored by a real Label Studio and read back unchanged.

Two ways in: posted to Label Studio's API (`/api/projects/{id}/import/predictions` and
`/api/predictions/`), and served by a real `relaxml serve` backend that uses the builders.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from relaxml import Prediction, check_prediction

from ..support import builder_model as bm
from ..support.labelstudio import LabelStudio
from ..support.processes import BackendFactory

ROOT = Path(__file__).resolve().parents[2]

CASES = {
    "image": (
        bm.IMAGE_CONFIG,
        {"image": "https://example.invalid/street.png"},
        bm.image_prediction,
    ),
    "text": (bm.TEXT_CONFIG, {"text": bm.TEXT}, bm.text_prediction),
    "html": (bm.HTML_CONFIG, {"html": "<h1>Hello world</h1>"}, bm.html_prediction),
    "audio": (bm.AUDIO_CONFIG, {"audio": "https://example.invalid/a.wav"}, bm.audio_prediction),
    "timeseries": (
        bm.TIMESERIES_CONFIG,
        {"csv": "https://example.invalid/ts.csv"},
        bm.timeseries_prediction,
    ),
}


def body(prediction: Prediction, task_id: int) -> dict[str, Any]:
    return {
        "task": task_id,
        "result": prediction.result,
        "score": prediction.score,
        "model_version": prediction.model_version,
    }


def project(ls: LabelStudio, name: str, tasks: int = 2) -> tuple[int, list[int]]:
    config, data, _ = CASES[name]
    created = ls.create_project(f"relaxml builders {name}", config)
    return created["id"], ls.import_tasks(created["id"], [{"data": data}] * tasks)


@pytest.mark.parametrize("name", list(CASES))
def test_builder_predictions_are_stored_unchanged(label_studio, name):
    ls = label_studio
    config, _, make = CASES[name]
    prediction = make()
    assert check_prediction(config, body(prediction, 0)) == []
    project_id, (bulk_task, single_task) = project(ls, name)

    created = ls.api(
        "POST", f"/api/projects/{project_id}/import/predictions", json=[body(prediction, bulk_task)]
    ).json()
    assert created == {"created": 1}
    single = ls.api("POST", "/api/predictions/", json=body(prediction, single_task)).json()
    assert single["result"] == prediction.result

    for task_id in (bulk_task, single_task):
        [stored] = ls.list_predictions(task_id=task_id)
        assert stored["result"] == prediction.result
        assert stored["score"] == prediction.score
        assert stored["model_version"] == "builders-1"
        assert check_prediction(config, stored) == []
        # The task the labeling page loads carries the same result.
        assert ls.get_task(task_id)["predictions"][0]["result"] == prediction.result


def test_the_image_prediction_covers_every_image_control():
    types = {item["type"] for item in bm.image_prediction().result}
    assert types == {
        "rectanglelabels",
        "textarea",
        "polygonlabels",
        "keypointlabels",
        "ellipselabels",
        "brushlabels",
        "choices",
        "rating",
        "number",
        "datetime",
        "taxonomy",
    }


def test_a_relaxml_backend_using_the_builders(
    label_studio, backend_factory: BackendFactory, free_port
):
    ls = label_studio
    project_id, task_ids = project(ls, "image", tasks=3)
    argv = [sys.executable, "-m", "relaxml", "serve", "tests/support/builder_model.py:BuilderModel"]
    argv += ["--host", "127.0.0.1", "--port", str(free_port)]
    backend = backend_factory(argv, {"PYTHONPATH": str(ROOT)}, free_port)
    ml = ls.register_ml_backend(project_id, backend.url)
    assert ls.get_ml_backend(ml["id"])["state"] == "CO"

    ls.retrieve_predictions(project_id)
    stored = ls.list_predictions(project_id=project_id)
    assert sorted(p["task"] for p in stored) == sorted(task_ids)
    expected = bm.image_prediction(
        ls.api("GET", f"/api/projects/{project_id}").json()["label_config"]
    )
    for prediction in stored:
        assert prediction["result"] == expected.result
        assert prediction["score"] == pytest.approx(0.8)
        assert prediction["model_version"] == "builders-1"
        assert check_prediction(bm.IMAGE_CONFIG, prediction) == []
