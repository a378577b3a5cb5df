"""Every route Label Studio calls answers JSON, and fast; training never blocks a request."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import pytest

from relaxml._devices import default_device

from .conftest import backend_of, first, wait_for
from .support.models import Echo, Slow, Trainable


@pytest.mark.parametrize("path", ["/", "/health"])
def test_health(serve, path):
    answer = serve(Echo).get(path)
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "UP",
        "v2": True,
        "model_class": "Echo",
        "model_version": "echo-1",
        "worker": os.getpid(),
        "device": default_device(),  # "cpu" unless torch is installed and sees a GPU
    }


def test_health_and_setup_answer_while_a_long_predict_runs(serve):
    client = serve(Slow)
    model = backend_of(client).model
    worker = threading.Thread(
        target=client.post, args=("/predict",), kwargs={"json": {"tasks": [{"id": 1, "data": {}}]}}
    )
    worker.start()
    try:
        assert model.entered.wait(5)
        start = time.perf_counter()
        assert client.get("/health").status_code == 200
        assert client.post("/setup", json={"project": "1.2"}).status_code == 200
        assert time.perf_counter() - start < 0.5
    finally:
        model.release.set()
        worker.join()


def test_setup_answers_the_model_version_and_keeps_the_project(serve, captured):
    request = first(captured, "/setup")
    client = serve(Echo)
    assert client.post("/setup", json=request).json() == {"model_version": "echo-1"}
    project = backend_of(client).projects.get(request["project"])
    assert project.label_config == request["schema"]
    assert project.hostname == request["hostname"]
    assert project.access_token == request["access_token"]
    assert project.id == int(request["project"].split(".")[0])


@pytest.mark.parametrize(
    ("extra_params", "expected"),
    [
        ({"threshold": 0.5}, {"threshold": 0.5}),
        ('{"threshold": 0.5}', {"threshold": 0.5}),
        (None, {}),
        ("", {}),
    ],
)
def test_setup_accepts_extra_params_as_object_string_or_null(serve, extra_params, expected):
    client = serve(Echo)
    answer = client.post("/setup", json={"project": "3.1", "extra_params": extra_params})
    assert answer.status_code == 200
    assert dict(backend_of(client).projects.get("3.1").extra_params) == expected


@pytest.mark.parametrize("extra_params", ["{not json", "[1, 2]", 5])
def test_setup_refuses_extra_params_that_are_not_an_object(serve, extra_params):
    answer = serve(Echo).post("/setup", json={"project": "3.1", "extra_params": extra_params})
    assert answer.status_code == 422
    assert answer.json()["field"] == "extra_params"


def test_setup_hook_runs_only_when_the_project_changes(serve, captured):
    request = first(captured, "/setup")
    client = serve(Echo)
    for _ in range(3):
        client.post("/setup", json=request)
    assert len(backend_of(client).model.setups) == 1
    client.post("/setup", json={**request, "schema": "<View></View>"})
    assert len(backend_of(client).model.setups) == 2


def test_setup_hook_errors_are_json_500(serve):
    class BadSetup(Echo):
        def setup(self, project: Any) -> None:
            raise RuntimeError("no GPU")

    answer = serve(BadSetup).post("/setup", json={"project": "1.2"})
    assert answer.status_code == 500
    assert answer.json()["detail"] == "BadSetup.setup raised RuntimeError: no GPU"


def test_every_captured_webhook_is_acknowledged_fast(serve, captured):
    client = serve(Trainable)
    hooks = [r["body"] for r in captured if r["path"] == "/webhook"]
    assert {h["action"] for h in hooks} >= {
        "START_TRAINING",
        "ANNOTATION_CREATED",
        "ANNOTATION_UPDATED",
        "ANNOTATIONS_DELETED",
        "TASKS_CREATED",
        "PROJECT_UPDATED",
    }
    for hook in hooks:
        start = time.perf_counter()
        answer = client.post("/webhook", json=hook)
        assert answer.status_code == 200, answer.text
        assert time.perf_counter() - start < 0.5
        status = answer.json()["status"]
        assert status == (
            "accepted" if hook["action"] in backend_of(client).settings.train_on else "ignored"
        )


def test_start_training_reaches_fit_in_the_background(serve, captured):
    client = serve(Trainable)
    model = backend_of(client).model
    model.gate.clear()
    hook = first(captured, "/webhook", action="START_TRAINING")
    start = time.perf_counter()
    answer = client.post("/webhook", json=hook)
    assert time.perf_counter() - start < 0.5
    assert answer.json()["status"] == "accepted"
    job = answer.json()["job"]
    assert model.started.wait(5)
    assert client.post("/job_status", json={"job": job}).json()["status"] == "running"
    model.gate.set()
    wait_for(lambda: client.post("/job_status", json={"job": job}).json()["status"] == "succeeded")
    event = model.events[0]
    assert event.action == "START_TRAINING"
    assert event.project_id == hook["project"]["id"]
    assert event.label_config == hook["project"]["label_config"]
    assert event.annotations == []


def test_annotation_event_carries_annotation_and_task(serve, captured):
    client = serve(Trainable)
    hook = first(captured, "/webhook", action="ANNOTATION_CREATED")
    client.post("/webhook", json=hook)
    model = backend_of(client).model
    wait_for(lambda: model.events)
    event = model.events[0]
    assert event.annotations == [hook["annotation"]]
    assert event.tasks == [hook["task"]]


def test_deletion_event_without_annotation_key_does_not_break_fit(serve, captured):
    client = serve(Trainable)
    hook = first(captured, "/webhook", action="ANNOTATIONS_DELETED")
    assert "annotation" not in hook
    client.post("/webhook", json=hook)
    model = backend_of(client).model
    wait_for(lambda: model.events)
    assert model.events[0].annotations == hook["annotations"]


def test_a_new_version_from_fit_is_served_and_listed(serve, captured):
    client = serve(Trainable)
    client.post("/webhook", json=first(captured, "/webhook", action="START_TRAINING"))
    wait_for(lambda: client.get("/health").json()["model_version"] == "train-1")
    assert client.post("/setup", json={"project": "1.2"}).json() == {"model_version": "train-1"}
    versions = client.get("/versions").json()
    assert versions["versions"] == ["train-0", "train-1"]
    assert versions["current"] == "train-1"
    assert versions["history"][1]["run"] == "run-1"
    tasks = {"tasks": [{"id": 1, "data": {}}]}
    assert client.post("/predict", json=tasks).json()["results"][0]["model_version"] == "train-1"


def test_legacy_train_route_reaches_fit(serve, captured):
    client = serve(Trainable)
    request = first(captured, "/train")
    answer = client.post("/train", json=request)
    assert answer.json()["status"] == "accepted"
    model = backend_of(client).model
    wait_for(lambda: model.events)
    event = model.events[0]
    assert event.action == "START_TRAINING"
    assert len(event.tasks) == len(request["annotations"])
    assert event.annotations  # flattened from the annotated tasks


def test_events_during_a_run_coalesce_into_one_follow_up(serve, captured):
    client = serve(Trainable)
    model = backend_of(client).model
    model.gate.clear()
    hook = first(captured, "/webhook", action="ANNOTATION_CREATED")
    client.post("/webhook", json=hook)
    assert model.started.wait(5)
    jobs = {client.post("/webhook", json=hook).json()["job"] for _ in range(49)}
    assert len(jobs) == 49  # each event is queued and acknowledged...
    model.gate.set()
    store = backend_of(client).training_store
    wait_for(lambda: not store.pending() and all(r.state != "running" for r in store.runs()))
    runs = store.runs()
    assert len(runs) == 2  # ...but they make one follow-up run, not 49
    assert [r.events for r in reversed(runs)] == [1, 49]
    assert len(model.events) == 2
    assert len(model.events[1].annotations) == 49  # the follow-up sees every annotation
    assert model.events[1].coalesced == 49


def test_a_failed_run_is_recorded_and_serving_goes_on(serve, captured):
    client = serve(Trainable)
    backend_of(client).model.fail_with = ValueError("bad labels")
    job = client.post("/webhook", json=first(captured, "/webhook", action="START_TRAINING")).json()[
        "job"
    ]
    wait_for(lambda: client.post("/job_status", json={"job": job}).json()["status"] == "failed")
    assert client.post("/job_status", json={"job": job}).json()["error"] == "ValueError: bad labels"
    assert client.get("/health").json()["model_version"] == "train-0"


def test_events_are_ignored_when_the_model_does_not_train(serve, captured):
    answer = serve(Echo).post("/webhook", json=first(captured, "/webhook", action="START_TRAINING"))
    assert answer.json() == {
        "status": "ignored",
        "action": "START_TRAINING",
        "detail": "Echo does not implement fit",
    }


def test_unknown_actions_are_ignored_with_200(serve):
    answer = serve(Trainable).post("/webhook", json={"action": "SOMETHING_NEW", "project": {}})
    assert answer.status_code == 200
    assert answer.json() == {"status": "ignored", "action": "SOMETHING_NEW"}


def test_train_on_setting_chooses_the_actions(serve, captured):
    client = serve(Trainable, train_on=frozenset({"START_TRAINING"}))
    hook = first(captured, "/webhook", action="ANNOTATION_CREATED")
    assert client.post("/webhook", json=hook).json()["status"] == "ignored"


def test_project_updated_refreshes_the_label_config(serve, captured):
    client = serve(Echo)
    setup = first(captured, "/setup")
    client.post("/setup", json=setup)
    hook = first(captured, "/webhook", action="PROJECT_UPDATED")
    hook["project"] = {
        **hook["project"],
        "label_config": "<View><Text name='t' value='$t'/></View>",
    }
    client.post("/webhook", json=hook)
    project = backend_of(client).projects.get(setup["project"])
    assert project.label_config == hook["project"]["label_config"]


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "action"), ({"action": 5}, "action"), ({"action": ""}, "action")],
)
def test_webhook_without_action_is_422(serve, body, field):
    answer = serve(Echo).post("/webhook", json=body)
    assert answer.status_code == 422
    assert answer.json()["field"] == field


def test_job_status(serve):
    client = serve(Trainable)
    assert client.post("/job_status", json={"job": "nope"}).status_code == 404
    assert client.post("/job_status", json={"job": "nope"}).json()["error"] == "not_found"
    assert client.post("/job_status", json={}).status_code == 422


def test_validate(serve):
    client = serve(Echo)
    assert client.post("/validate", json={"config": "<View/>"}).json() == {"status": "ok"}
    answer = client.post("/validate", json={"config": "<View>"})
    assert answer.status_code == 422
    assert "not valid XML" in answer.json()["detail"]
    assert client.post("/validate", json={}).json()["field"] == "config"


def test_delete_and_duplicate_model(serve):
    client = serve(Echo)
    client.post("/setup", json={"project": "1.5", "schema": "<View/>"})
    assert (
        client.post("/duplicate_model", json={"project_src": "1.5", "project_dst": "2.6"}).json()[
            "status"
        ]
        == "ok"
    )
    assert backend_of(client).projects.get("2.6").label_config == "<View/>"
    assert client.post("/delete", json={"project": "1.5"}).json()["status"] == "ok"
    assert client.post("/delete", json={"project": "1.5"}).json()["status"] == "unknown"
    assert client.post("/duplicate_model", json={"project_src": "1.5"}).status_code == 422


def test_overload_is_503_with_retry_after(serve):
    client = serve(Slow, max_concurrency=1, max_queue=0)
    model = backend_of(client).model
    one = {"tasks": [{"id": 1, "data": {}}]}
    worker = threading.Thread(target=client.post, args=("/predict",), kwargs={"json": one})
    worker.start()
    try:
        assert model.entered.wait(5)
        answer = client.post("/predict", json=one)
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["error"] == "overloaded"
    finally:
        model.release.set()
        worker.join()
    assert client.post("/predict", json=one).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "name", "body"),
    [
        ("GET", "/jobs", "list_jobs", None),
        ("GET", "/versions", "list_versions", None),
        ("POST", "/job_status", "job_status", {"job": "run-1"}),
    ],
)
def test_routes_that_read_sqlite_run_off_the_event_loop(
    serve, monkeypatch, method, path, name, body
):
    from relaxml._server import routes

    original = getattr(routes, name)
    on_loop: list[bool] = []

    def spy(*args: Any) -> Any:
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:  # no running loop in this thread: a worker thread
            on_loop.append(False)
        return original(*args)

    monkeypatch.setattr(routes, name, spy)
    client = serve(Trainable)
    client.request(method, path, json=body)
    assert on_loop == [False]
