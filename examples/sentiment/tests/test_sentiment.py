"""The sentiment example (examples/sentiment), served and trained through HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from examples.conftest import wait_for
from relaxml._server.loader import load_model_class
from relaxml.testing import FakeLabelStudio, make_event

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
TEXTS = [task["data"]["text"] for task in json.loads((EXAMPLE / "tasks.json").read_text())]
Model = load_model_class(f"{EXAMPLE / 'model.py'}:NaiveBayesSentiment")


def predict(client: Any, *texts: str) -> list[dict[str, Any]]:
    tasks = [{"id": i + 1, "data": {"text": t}} for i, t in enumerate(texts)]
    body = {"project": "7.1", "label_config": LABEL_CONFIG, "tasks": tasks}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["results"])


def annotation_event(task_id: int, text: str, label: str) -> dict[str, Any]:
    result = [
        {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 7, "label_config": LABEL_CONFIG},
        "task": {"id": task_id, "project": 7, "data": {"text": text}},
        "annotation": {"id": 100 + task_id, "task": task_id, "result": result},
    }


def test_untrained_model_predicts_choices_from_the_seed_lexicon_as_nb_0(serve):
    client = serve(Model)
    results = predict(client, TEXTS[0], TEXTS[1])
    assert [r["model_version"] for r in results] == ["nb-0", "nb-0"]
    items = [r["result"][0] for r in results]
    assert [item["value"] for item in items] == [
        {"choices": ["positive"]},
        {"choices": ["negative"]},
    ]
    for result, item in zip(results, items, strict=True):
        names = (item["from_name"], item["to_name"], item["type"])
        assert names == ("sentiment", "text", "choices")
        assert 0.5 < item["score"] <= 1.0
        assert result["score"] == item["score"]


def test_annotation_event_trains_nb_1_which_survives_a_restart(serve, tmp_path):
    client = serve(Model, data_dir=str(tmp_path))
    text = "The delivery was quick and the box was nice"
    assert predict(client, text)[0]["result"][0]["value"]["choices"] == ["positive"]
    for _ in range(2):  # the same annotation twice changes nothing the second time
        assert client.post("/webhook", json=annotation_event(3, text, "negative")).status_code < 300
    wait_for(lambda: client.get("/health").json()["model_version"] == "nb-1")
    answer = predict(client, text)[0]
    assert answer["model_version"] == "nb-1"
    assert answer["result"][0]["value"]["choices"] == ["negative"]
    restarted = serve(Model, data_dir=str(tmp_path))  # load() restores the examples
    again = predict(restarted, text)[0]
    assert again["model_version"] == "nb-1"
    assert again["result"][0]["value"]["choices"] == ["negative"]


def positive() -> list[dict[str, Any]]:
    return [{"from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": ["positive"]}}]  # fmt: skip


def test_start_training_refits_on_every_annotated_task_and_skips_cancelled_ones():
    model = Model()
    with FakeLabelStudio() as studio:
        project = studio.add_project(LABEL_CONFIG, id=7)
        studio.add_task(project, {"text": TEXTS[5]}, [positive()], id=6)
        cancelled = studio.add_task(project, {"text": TEXTS[3]}, id=4)
        studio.annotate(cancelled, positive(), was_cancelled=True)
        event = make_event(LABEL_CONFIG, project_id=project, label_studio=studio)
        assert model.fit(event) == "nb-1"
        assert model.examples == {6: (TEXTS[5], "positive")}
        assert model.fit(event) is None  # nothing new: no new version


def test_unauthenticated_annotation_payloads_are_not_trained_on():
    model = Model()
    hook = annotation_event(3, TEXTS[2], "negative")
    del hook["annotation"]["task"]  # a forged annotation naming no task would match any
    carried = {"tasks": [hook["task"]], "annotations": [hook["annotation"]]}
    forged = make_event(LABEL_CONFIG, action="ANNOTATION_CREATED", authenticated=False, **carried)
    assert model.fit(forged) is None
    assert model.examples == {}
    with FakeLabelStudio() as studio:
        project = studio.add_project(LABEL_CONFIG, id=7)
        studio.add_task(project, {"text": TEXTS[5]}, [positive()], id=6)
        with_api = make_event(
            LABEL_CONFIG,
            action="ANNOTATION_CREATED",
            authenticated=False,
            project_id=project,
            label_studio=studio,
            **carried,
        )
        assert model.fit(with_api) == "nb-1"  # a refit from Label Studio's data, not the payload
    assert model.examples == {6: (TEXTS[5], "positive")}


def test_readme_shows_the_bundled_config_and_its_links_resolve():
    readme = (EXAMPLE / "README.md").read_text()
    assert LABEL_CONFIG.strip() in readme
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", readme):
        assert (EXAMPLE / target).is_file(), target
