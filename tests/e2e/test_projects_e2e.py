"""Per-project models against a real Label Studio: two projects on one backend, each trained on
its own annotations, each with its own version and predictions."""

from __future__ import annotations

from typing import Any

import requests

from .test_serving import TASKS, project_with_tasks, serve, wait_for
from .test_training_e2e import choice, predicted

TARGET = "tests/support/project_sentiment.py:PerProjectSentiment"


def current(backend: Any, project: int) -> str:
    answer = requests.get(backend.url + "/versions", params={"project": project}, timeout=5)
    return str(answer.json()["current"])


def test_two_projects_train_and_predict_each_with_its_own_model(
    label_studio, backend_factory, free_port, tmp_path
):
    ls = label_studio
    a, tasks_a = project_with_tasks(ls, "relaxml per-project A")
    b, tasks_b = project_with_tasks(ls, "relaxml per-project B")
    backend = serve(
        backend_factory,
        free_port,
        TARGET,
        env={
            "RELAXML_DATA_DIR": str(tmp_path),
            "LABEL_STUDIO_API_KEY": ls.token,
            "LABEL_STUDIO_URL": ls.url,
            "RELAXML_TRAIN_ON": "START_TRAINING",
            "RELAXML_MAX_LOADED_MODELS": "1",  # every switch of project rebuilds an instance
        },
    )
    ml_a = ls.register_ml_backend(a, backend.url)
    ml_b = ls.register_ml_backend(b, backend.url)
    ls.retrieve_predictions(a)
    ls.retrieve_predictions(b)
    # The seed lexicon reads task 2 as positive; A's annotators say negative. B's say the
    # cracked screen (task 5) is positive.
    assert predicted(ls, a, "nb-0")[tasks_a[2]] == "positive"
    ls.create_annotation(tasks_a[2], choice("negative"))
    ls.create_annotation(tasks_b[5], choice("positive"))

    ls.train(ml_a["id"])
    wait_for(lambda: current(backend, a) == "nb-1", timeout=30)
    assert current(backend, b) == "nb-0"  # A's training left B alone
    ls.retrieve_predictions(a)
    after_a = predicted(ls, a, "nb-1")
    assert len(after_a) == len(tasks_a)
    assert after_a[tasks_a[2]] == "negative", TASKS[2]
    assert predicted(ls, b, "nb-1") == {}

    ls.train(ml_b["id"])
    wait_for(lambda: current(backend, b) == "nb-1", timeout=30)
    ls.retrieve_predictions(b)
    after_b = predicted(ls, b, "nb-1")
    assert len(after_b) == len(tasks_b)
    assert after_b[tasks_b[5]] == "positive", TASKS[5]
    assert after_b[tasks_b[2]] == "positive"  # A's annotation did not reach B's model
    history = requests.get(backend.url + "/versions", params={"project": a}, timeout=5).json()
    assert [v["version"] for v in history["history"]] == ["nb-0", "nb-1"]
    assert ls.get_ml_backend(ml_a["id"])["state"] == "CO"
