"""`event.training_tasks()` and `event.refits`: what a `fit` trains on, and whom it trusts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from relaxml.events import RunControl, event_from_legacy_train, event_from_webhook
from relaxml.labelstudio import LabelStudioClient
from relaxml.testing import FakeLabelStudio

CONFIG = '<View><Text name="t" value="$t"/><Choices name="c" toName="t"><Choice value="a"/><Choice value="b"/></Choices></View>'  # noqa: E501


def result(choice: str) -> list[dict[str, Any]]:
    return [{"from_name": "c", "to_name": "t", "type": "choices", "value": {"choices": [choice]}}]


@pytest.fixture
def studio() -> Any:
    with FakeLabelStudio() as fake:
        project = fake.add_project(CONFIG)
        first = fake.add_task(project, {"t": "one"}, annotations=[result("a")])
        second = fake.add_task(project, {"t": "two"})
        fake.annotate(second, result("b"), was_cancelled=True)
        fake.add_task(project, {"t": "three"})  # never annotated
        fake.project_id, fake.first = project, first  # type: ignore[attr-defined]
        yield fake


def connected(event: Any, fake: FakeLabelStudio | None) -> Any:
    client = LabelStudioClient(fake.url, fake.api_key) if fake else None
    return replace(event, control=RunControl(client, None))


def annotation_event(fake: FakeLabelStudio, authenticated: bool = True) -> Any:
    task = {"id": 99, "project": fake.project_id, "data": {"t": "new"}}  # type: ignore[attr-defined]
    annotation = {"id": 7, "task": 99, "result": result("b")}
    body = {"action": "ANNOTATION_CREATED", "project": {"id": fake.project_id},  # type: ignore[attr-defined]
            "task": task, "annotation": annotation}  # fmt: skip
    return event_from_webhook(body, authenticated=authenticated)


def test_start_training_refits_on_label_studio_s_annotated_tasks(studio):
    start = event_from_webhook({"action": "START_TRAINING", "project": {"id": studio.project_id}})
    event = connected(start, studio)
    assert event.refits
    tasks = list(event.training_tasks())
    assert [t["data"]["t"] for t in tasks] == ["one"]  # cancelled and unannotated left out
    assert tasks[0]["annotations"][0]["result"] == result("a")


def test_an_annotation_event_adds_what_it_carries(studio):
    event = connected(annotation_event(studio), studio)
    assert not event.refits  # even with the API: add the new annotation, no full refit
    (task,) = event.training_tasks()
    assert (task["id"], task["data"], task["annotations"][0]["id"]) == (99, {"t": "new"}, 7)
    assert ("GET", "/api/tasks") not in studio.requests


def test_an_unauthenticated_event_refits_from_label_studio_or_gives_nothing(studio):
    forged = annotation_event(studio, authenticated=False)
    with_api = connected(forged, studio)
    assert with_api.refits
    assert [t["data"]["t"] for t in with_api.training_tasks()] == ["one"]  # never "new"
    without_api = connected(forged, None)
    assert not without_api.refits
    assert list(without_api.training_tasks()) == []


def test_a_cancelled_run_stops_yielding(studio):
    event = connected(annotation_event(studio), studio)
    event.control.cancelled.set()
    assert list(event.training_tasks()) == []


def test_cancelled_and_other_tasks_annotations_are_left_out():
    body = {
        "action": "ANNOTATION_CREATED", "project": {"id": 1},
        "task": {"id": 5, "data": {"t": "x"}},
        "annotations": [{"id": 1, "task": 5, "result": result("a"), "was_cancelled": True},
                        {"id": 2, "task": 6, "result": result("a")}],
    }  # fmt: skip
    assert list(event_from_webhook(body).training_tasks()) == []


def test_the_legacy_train_body_gives_each_task_its_own_annotations_once():
    body = {
        "project": "1.1", "label_config": CONFIG,
        "annotations": [
            {"id": 1, "data": {"t": "x"}, "annotations": [{"result": result("a")}]},
            {"id": 2, "data": {"t": "y"}, "annotations": [{"result": result("b")}]},
        ],
    }  # fmt: skip
    tasks = list(event_from_legacy_train(body).training_tasks())
    assert [(t["id"], [a["result"] for a in t["annotations"]]) for t in tasks] == [
        (1, [result("a")]),
        (2, [result("b")]),
    ]
