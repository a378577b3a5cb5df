"""The text classifier example (examples/text_classifier) in a real Label Studio: predictions of
the untrained version, annotations, Start Training, and better predictions of the new one."""

from __future__ import annotations

from typing import Any

import pytest

from examples.text_classifier.model import classify, generated_texts, train_pipeline

from ..support.example_flow import label_config, serve_example

EXAMPLE = "examples/text_classifier/model.py:TextClassifier"
LABELS = ("sports", "politics", "technology")
DATA = generated_texts(30, seed=10)  # the topics in turn
ANNOTATED, HELD_OUT = DATA[:12], DATA[12:]


def choice(label: str) -> list[dict[str, Any]]:
    return [
        {"from_name": "topic", "to_name": "text", "type": "choices", "value": {"choices": [label]}}
    ]


def chosen(prediction: dict[str, Any]) -> str:
    (item,) = prediction["result"]
    assert (item["from_name"], item["to_name"], item["type"]) == ("topic", "text", "choices")
    return str(item["value"]["choices"][0])


def accuracy(predicted: list[str]) -> float:
    truth = [label for _, label in HELD_OUT]
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def test_text_classifier_learns_topics_from_twelve_annotations(
    label_studio, backend_factory, free_port, tmp_path
):
    ls = label_studio
    project_id = ls.create_project("relaxml text classifier", label_config("text_classifier"))["id"]
    ids = ls.import_tasks(project_id, [{"data": {"text": text}} for text, _ in DATA])
    annotated_ids, held_out_ids = ids[:12], ids[12:]
    env = {"RELAXML_DATA_DIR": str(tmp_path / "data")}
    project = serve_example(ls, backend_factory, free_port, project_id, EXAMPLE, env)
    assert project.health()["model_version"] == "tfidf-0"

    before = project.retrieve(ids)  # exactly one tfidf-0 prediction per task
    assert {p["model_version"] for p in before.values()} == {"tfidf-0"}
    assert all(p["result"] == [] for p in before.values())  # untrained: no guess
    accuracy_before = 0.0

    for task_id, (_, label) in zip(annotated_ids, ANNOTATED, strict=True):
        ls.create_annotation(task_id, choice(label))
    assert project.health()["model_version"] == "tfidf-0"  # Start Training alone trains here
    assert project.train() == "tfidf-1"

    after = project.retrieve(ids)
    assert {p["model_version"] for p in after.values()} == {"tfidf-1"}
    predicted = [chosen(after[i]) for i in held_out_ids]
    # The served pipeline is the one these 12 annotations fit, and it knows the topics.
    local = classify(train_pipeline(ANNOTATED), [text for text, _ in HELD_OUT], LABELS)
    assert predicted == [answer[0] for answer in local if answer]
    accuracy_after = accuracy(predicted)
    assert accuracy_after >= 0.7
    assert accuracy_after > accuracy_before + 0.3
    scores = [after[i]["score"] for i in held_out_ids]
    assert all(1 / 3 < score <= 1 for score in scores)
    assert scores == pytest.approx([answer[1] for answer in local if answer], abs=1e-6)
