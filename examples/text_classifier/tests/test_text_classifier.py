"""The text classifier example (examples/text_classifier), served and trained through HTTP."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from relaxml import check_prediction
from relaxml.testing import FakeLabelStudio, ServedModel, make_event, wait_for_training

from ..model import TextClassifier, classify, generated_texts, target_of, train_pipeline

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
README = (EXAMPLE / "README.md").read_text()
TOPIC_PAIRS = generated_texts(6, seed=9)


def predict(client: Any, texts: list[str], first_id: int = 1) -> list[dict[str, Any]]:
    tasks = [{"id": first_id + i, "data": {"text": t}} for i, t in enumerate(texts)]
    body = {"project": "7.1", "label_config": LABEL_CONFIG, "tasks": tasks}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    results = list(answer.json()["results"])
    for result in results:
        assert check_prediction(LABEL_CONFIG, result) == []
    return results


def chosen(result: dict[str, Any]) -> str:
    return str(result["result"][0]["value"]["choices"][0])


def annotation_event(task_id: int, text: str, label: str) -> dict[str, Any]:
    result = [{"from_name": "topic", "to_name": "text", "type": "choices"}]
    result[0]["value"] = {"choices": [label]}
    return {
        "action": "ANNOTATION_CREATED",
        "project": {"id": 7, "label_config": LABEL_CONFIG},
        "task": {"id": task_id, "project": 7, "data": {"text": text}},
        "annotation": {"id": 100 + task_id, "task": task_id, "result": result},
    }


def annotate(client: Any, pairs: list[tuple[str, str]]) -> str:
    """Send one annotation event per (text, label), tasks 1, 2, ...; wait until the run that
    takes the last one has finished, and return the version served then."""
    job = ""
    for task_id, (text, label) in enumerate(pairs, start=1):
        answer = client.post("/webhook", json=annotation_event(task_id, text, label))
        assert answer.status_code < 300, answer.text
        job = answer.json()["job"]
    served = ServedModel(client)
    assert wait_for_training(served, job)["state"] == "succeeded"
    return served.model_version


def start_training(studio: FakeLabelStudio, annotated: list[tuple[int, str, str]]) -> Any:
    """START_TRAINING for project 7 of `studio`, whose annotated tasks are now `annotated`,
    (id, text, label) each: what Label Studio's API answers during the run."""
    studio.tasks.clear()
    project = studio.add_project(LABEL_CONFIG, id=7)
    for task_id, text, label in annotated:
        result = [{"from_name": "topic", "to_name": "text", "type": "choices",
                   "value": {"choices": [label]}}]  # fmt: skip
        studio.add_task(project, {"text": text}, [result], id=task_id)
    return make_event(LABEL_CONFIG, project_id=project, label_studio=studio)


def test_untrained_model_predicts_nothing(serve):
    client = serve(TextClassifier)
    assert client.get("/health").json()["model_version"] == "tfidf-0"
    results = predict(client, ["The coach won the final", "The senate voted on the bill"])
    for result in results:
        assert result["model_version"] == "tfidf-0"
        assert result["result"] == []  # no guess before two classes are known


def test_annotation_events_train_tfidf_1_once_two_classes_are_known_and_it_survives_restart(
    serve, tmp_path
):
    client = serve(TextClassifier, data_dir=str(tmp_path))
    train = generated_texts(30, seed=1)
    assert annotate(client, train[:1]) == "tfidf-0"  # one class alone: nothing to fit yet
    version = annotate(client, train)
    assert re.fullmatch(r"tfidf-[1-9]\d*", version)
    probe = [
        "Fans cheered as the striker scored in the final",
        "The senate voted on the bill before the election",
    ]
    results = predict(client, probe)
    assert [chosen(r) for r in results] == ["sports", "politics"]
    for result in results:
        assert result["model_version"] == version
        assert 1 / 3 < result["score"] <= 1.0
        assert result["score"] == result["result"][0]["score"]
    restarted = serve(TextClassifier, data_dir=str(tmp_path))  # load() restores the pipeline
    again = predict(restarted, probe)
    assert [(r["model_version"], chosen(r)) for r in again] == [
        (version, "sports"),
        (version, "politics"),
    ]
    assert [r["score"] for r in again] == pytest.approx([r["score"] for r in results])


def test_start_training_refits_on_every_annotated_task_and_only_changes_bring_a_version():
    model = TextClassifier()
    pairs = generated_texts(12, seed=5)
    one_class = [(i, text, "sports") for i, (text, _) in enumerate(pairs[:3], start=1)]
    fetched = [(i, text, label) for i, (text, label) in enumerate(pairs, start=1)]
    with FakeLabelStudio() as studio:
        assert model.fit(start_training(studio, one_class)) is None  # one class: no model
        assert model.pipeline is None
        assert model.fit(start_training(studio, fetched)) == "tfidf-1"
        assert model.examples == {i: (text, label) for i, text, label in fetched}
        assert model.fit(start_training(studio, fetched)) is None  # nothing new: no version
        assert model.fit(start_training(studio, fetched[:9])) == "tfidf-2"  # forgets removed
    assert len(model.examples) == 9


def test_unauthenticated_annotation_payloads_are_not_trained_on():
    model = TextClassifier()
    forged = [annotation_event(i, text, label) for i, (text, label) in enumerate(TOPIC_PAIRS)]
    event = make_event(
        LABEL_CONFIG,
        action="ANNOTATION_CREATED",
        annotations=[hook["annotation"] for hook in forged],
        tasks=[hook["task"] for hook in forged],
        authenticated=False,
    )
    assert model.fit(event) is None
    assert model.examples == {}
    assert model.pipeline is None


def test_scores_sort_the_least_confident_tasks_first(serve):
    """The prediction score is the chosen class's probability: a text mixing two topics scores
    lower than a clear one, so an ascending sort on score asks about it first."""
    client = serve(TextClassifier)
    assert annotate(client, generated_texts(30, seed=1)) != "tfidf-0"
    clear = "Fans cheered as the striker scored in the stadium"
    mixed = "Everyone is talking about the striker and the software"
    scores = {chosen(r): r["score"] for r in predict(client, [clear])}
    mixed_score = predict(client, [mixed])[0]["score"]
    assert scores["sports"] > mixed_score


def readme_figure(name: str) -> float:
    match = re.search(rf"accuracy {name} training: \*\*(\d\.\d\d)\*\*", README)
    assert match, f"README.md quotes no 'accuracy {name} training: **0.NN**'"
    return float(match.group(1))


def test_readme_accuracy_before_and_after_training_is_what_the_model_measures():
    """README: 30 generated annotated texts (seed 1) to train, 90 others (seed 2) to test."""
    labels = target_of(LABEL_CONFIG).labels
    test = generated_texts(90, seed=2)
    texts = [text for text, _ in test]

    def accuracy(answers: list[tuple[str, float] | None]) -> float:
        right = (
            a is not None and a[0] == label for a, (_, label) in zip(answers, test, strict=True)
        )
        return sum(right) / 90

    before = accuracy(classify(None, texts, labels))
    after = accuracy(classify(train_pipeline(generated_texts(30, seed=1)), texts, labels))
    assert round(before, 2) == readme_figure("before")
    assert round(after, 2) == readme_figure("after")
    assert after > before + 0.3


def test_a_config_without_choices_on_a_text_is_refused_with_what_to_add(serve):
    client = serve(TextClassifier)
    config = '<View><Text name="text" value="$text"/></View>'
    body = {"project": "7.1", "label_config": config, "tasks": [{"id": 1, "data": {"text": "x"}}]}
    answer = client.post("/predict", json=body)
    assert answer.status_code >= 400
    assert "<Choices> on a <Text>" in answer.text


def test_readme_shows_the_bundled_config_and_its_links_resolve():
    assert LABEL_CONFIG.strip() in README
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", README):
        assert (EXAMPLE / target).is_file(), target
