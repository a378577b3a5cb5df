"""`relaxml.testing`: the kit a user tests a model with, exercised on real models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

from relaxml import Context, LabelStudioModel, Prediction, Task, TrainingEvent
from relaxml._server.loader import load_model_class
from relaxml.testing import (
    FakeLabelStudio,
    assert_predict_response,
    make_context,
    make_task,
    serve,
)

from .conftest import wait_for

SENTIMENT = Path(__file__).resolve().parents[1] / "examples" / "sentiment"
CONFIG = (SENTIMENT / "label_config.xml").read_text()
Sentiment = load_model_class(f"{SENTIMENT / 'model.py'}:NaiveBayesSentiment")


def choice(label: str) -> list[dict[str, Any]]:
    value = {"choices": [label]}
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices", "value": value}]


@pytest.fixture(params=["legacy token", "personal access token"])
def label_studio(request: pytest.FixtureRequest) -> Any:
    with FakeLabelStudio(personal_access_token=request.param != "legacy token") as fake:
        yield fake


class Reader(LabelStudioModel):
    """Predicts the first bytes of each task's file, as a choice."""

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [
            Prediction(result=choice(context.local_path(t.data["text"], t).read_text()))
            for t in tasks
        ]


class Broken(LabelStudioModel):
    """Predicts a label the config lacks; training always fails."""

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=choice("maybe")) for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        raise ValueError("no luck")


def test_serve_predicts_and_checks_the_answer():
    with serve(Sentiment) as served:
        tasks = [{"id": 1, "data": {"text": "great, I love it"}}]
        (prediction,) = served.predict(tasks, CONFIG)
        assert prediction["result"][0]["value"] == {"choices": ["positive"]}
        assert served.model_version == "nb-0"
        assert isinstance(served.model, Sentiment)


def test_a_prediction_that_does_not_fit_the_config_fails_with_its_problems():
    with serve(Broken) as served:
        with pytest.raises(AssertionError, match=r"(?s)results\[0\] does not fit.*'maybe'"):
            served.predict([{"id": 1, "data": {"text": "x"}}], CONFIG)
        answer = served.client.post("/predict", json={"tasks": [{"id": 1, "data": {}}]}).json()
        assert_predict_response(answer, 1)  # no config: the shape alone
        with pytest.raises(AssertionError, match="1 results for 2 tasks"):
            assert_predict_response(answer, 2)


def test_training_from_the_fake_s_annotations_with_either_key(label_studio):
    fake = label_studio
    project = fake.add_project(CONFIG)
    texts = ["the box was nice", "arrived on time", "cracked screen"]
    ids = [fake.add_task(project, {"text": t}) for t in texts]
    fake.annotate(ids[0], choice("negative"))
    with serve(Sentiment, label_studio=fake) as served:
        run = served.train(fake.start_training_event(project))
        assert run["state"] == "succeeded", run
        assert run["version"] == "nb-1"
        assert run["annotations"] == 1
        (prediction,) = served.predict([{"id": ids[0], "data": {"text": texts[0]}}], CONFIG)
        assert prediction["result"][0]["value"] == {"choices": ["negative"]}
    assert ("GET", "/api/tasks") in fake.requests


def test_a_failed_run_is_returned_with_its_error():
    with FakeLabelStudio() as fake, serve(Broken, label_studio=fake) as served:
        project = fake.add_project(CONFIG)
        run = served.train(fake.start_training_event(project))
        assert run["state"] == "failed"
        assert "no luck" in run["error"]


def test_background_predictions_reach_the_fake_despite_a_failure(label_studio):
    fake = label_studio
    project = fake.add_project(CONFIG)
    ids = [fake.add_task(project, {"text": f"great {n}"}) for n in range(40)]
    fake.fail(f"/api/projects/{project}/import/predictions", status=503, times=1)
    with serve(Sentiment, label_studio=fake, delivery="background") as served:
        tasks = [{"id": i, "data": fake.tasks[i]["data"], "project": project} for i in ids]
        response = served.client.post(
            "/predict", json={"tasks": tasks, "project": f"{project}.1700000000"}
        )
        assert response.status_code == 200
        wait_for(lambda: len(fake.predictions) == len(ids), timeout=30)
    assert sorted(p["task"] for p in fake.predictions) == ids  # each once, none lost
    imports = [r for r in fake.requests if r[1].endswith("/import/predictions")]
    assert len(imports) == len(fake.imports) + 1  # the refused one was sent again
    assert fake.predictions_of(ids[0])[0]["model_version"] == "nb-0"


def test_make_context_reads_local_files_and_the_fake_s_uploads(tmp_path, label_studio):
    fake = label_studio
    (tmp_path / "a.txt").write_text("positive")
    uploaded = fake.upload(1, "b.txt", b"negative")
    context = make_context(CONFIG, local_files_root=tmp_path, label_studio=fake)
    tasks = [
        make_task({"text": "/data/local-files/?d=a.txt"}, id=1),
        make_task({"text": uploaded}, id=2),
    ]
    predictions = Reader().predict(tasks, context)
    assert [p.result[0]["value"]["choices"] for p in predictions] == [["positive"], ["negative"]]
    assert tasks[1].raw == {"id": 2, "data": {"text": uploaded}, "project": 1}


def test_the_fake_refuses_what_label_studio_refuses(label_studio):
    fake = label_studio
    uploaded = fake.upload(1, "b.txt", b"x")
    assert requests.get(fake.url + uploaded, timeout=5).status_code == 401
    wrong = {"Authorization": f"Token {fake.api_key}" if fake.personal_access_token else "Token x"}
    whoami = requests.get(fake.url + "/api/current-user/whoami", headers=wrong, timeout=5)
    assert whoami.status_code == 401
    refresh = requests.post(fake.url + "/api/token/refresh/", json={"refresh": "x"}, timeout=5)
    assert refresh.status_code == 401


def test_an_error_entry_is_an_answer_label_studio_accepts():
    answer = {
        "results": [
            {"result": [], "score": 0.0, "model_version": "v1"},
            {"error": "out_of_memory", "detail": "task 2 does not fit"},
        ]
    }
    assert_predict_response(answer, 2)
    with pytest.raises(AssertionError):
        assert_predict_response({"results": [{"error": 3}]}, 1)
