"""POST /predict: one valid entry per task, in order, whatever the model does."""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import pytest

from relaxml import LabelStudioModel, Prediction
from relaxml._server import modelcall

from .conftest import backend_of, first
from .support.models import AsyncEcho, Echo, Scripted


def body(*ids: int, **extra: Any) -> dict[str, Any]:
    tasks = [{"id": i, "data": {"text": f"task {i}"}, "project": 1} for i in ids]
    return {"tasks": tasks, "project": "1.1795845042", "label_config": "<View/>", **extra}


def scripted(output: Any) -> type[Scripted]:
    value = staticmethod(output) if callable(output) else output
    return type("Squirrel", (Scripted,), {"output": value})


def test_captured_batch_gets_one_entry_per_task_in_order(serve, captured):
    request = first(captured, "/predict")
    client = serve(Echo)
    answer = client.post("/predict", json=request)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert len(results) == len(request["tasks"])
    for task, entry in zip(request["tasks"], results, strict=True):
        assert entry["model_version"] == "echo-1"
        assert entry["result"][0]["id"] == f"r{task['id']}"
        assert isinstance(entry["score"], float)


def test_model_receives_typed_tasks_and_context(serve, captured):
    request = first(captured, "/predict")
    client = serve(Echo)
    client.post("/predict", json=request)
    ids, context = backend_of(client).model.calls[0]
    assert ids == [t["id"] for t in request["tasks"]]
    assert context.label_config == request["label_config"]
    assert context.project.uid == request["project"]
    assert context.project.id == int(request["project"].split(".")[0])
    assert context.interactive is None
    assert "password" not in context.params
    assert "login" not in context.params


def test_interactive_context_reaches_the_model(serve, captured):
    request = next(
        r["body"] for r in captured if r["path"] == "/predict" and r["body"]["params"]["context"]
    )
    client = serve(Echo)
    answer = client.post("/predict", json=request)
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 1
    _, context = backend_of(client).model.calls[0]
    assert context.is_interactive
    assert context.interactive == request["params"]["context"]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (None, {"result": [], "score": 0.0}),
        ([], {"result": [], "score": 0.0}),
        ({"result": []}, {"result": [], "score": 0.0}),
        ({"result": [{"score": 0.2}, {"score": 0.4}]}, {"score": pytest.approx(0.3)}),
        ({"result": [], "score": 1}, {"score": 1.0}),
        (Prediction(result=[], score=0.7), {"score": 0.7}),
        ({"result": [], "model_version": "custom"}, {"model_version": "custom"}),
    ],
)
def test_each_entry_shape_becomes_a_valid_prediction(serve, entry, expected):
    client = serve(scripted(lambda tasks: [entry for _ in tasks]))
    result = client.post("/predict", json=body(1)).json()["results"][0]
    assert result["model_version"] == expected.get("model_version", "Squirrel")
    assert isinstance(result["score"], float)
    for key, value in expected.items():
        assert result[key] == value


def test_a_list_entry_gives_several_predictions_for_one_task(serve):
    two = [{"result": [], "score": 0.1}, Prediction(result=[], score=0.2, model_version="b")]
    client = serve(scripted(lambda tasks: [two for _ in tasks]))
    results = client.post("/predict", json=body(1, 2)).json()["results"]
    assert [[p["score"] for p in entry] for entry in results] == [[0.1, 0.2], [0.1, 0.2]]
    assert [p["model_version"] for p in results[0]] == ["Squirrel", "b"]


def test_default_model_version_is_the_class_name(serve):
    client = serve(scripted(lambda tasks: [None] * len(tasks)))
    assert client.post("/setup", json={"project": "1.2"}).json() == {"model_version": "Squirrel"}


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (lambda tasks: [None], "returned 1 entries for 3 tasks"),
        (lambda tasks: [None] * 4, "returned 4 entries for 3 tasks"),
        (lambda tasks: None, "must return a list"),
        (lambda tasks: {"result": []}, "must return a list"),
        (lambda tasks: ["x"] * 3, "entry 0 must be a Prediction"),
        (lambda tasks: [{"score": 1}] * 3, "has no 'result' key"),
        (lambda tasks: [{"result": "positive"}] * 3, "'result' must be a list of dicts"),
        (lambda tasks: [{"result": [], "score": math.nan}] * 3, "'score' must be a finite"),
        (lambda tasks: [{"result": [], "score": "high"}] * 3, "'score' must be a finite"),
        (lambda tasks: [{"result": [], "model_version": None}] * 3, None),
        (lambda tasks: [{"result": [], "model_version": ""}] * 3, "'model_version' must be"),
    ],
)
def test_bad_model_output_is_a_clear_500_naming_the_model(serve, output, message):
    client = serve(scripted(output))
    answer = client.post("/predict", json=body(1, 2, 3))
    if message is None:  # a None model_version is filled in, not an error
        assert answer.status_code == 200
        assert {e["model_version"] for e in answer.json()["results"]} == {"Squirrel"}
        return
    assert answer.status_code == 500
    assert answer.json()["error"] == "model_output"
    assert answer.json()["detail"].startswith("Squirrel.predict")
    assert message in answer.json()["detail"]
    assert client.get("/health").status_code == 200


def test_an_exception_in_predict_is_a_json_500_without_traceback(serve, caplog):
    client = serve(scripted(ValueError("weights are missing")))
    answer = client.post("/predict", json=body(1))
    assert answer.status_code == 500
    assert answer.json() == {
        "error": "model_error",
        "detail": "Squirrel.predict raised ValueError: weights are missing",
    }
    assert "Traceback" not in answer.text
    assert any(r.exc_info and "weights are missing" in str(r.exc_info[1]) for r in caplog.records)
    assert client.post("/predict", json=body(2)).status_code == 500  # still serving
    assert client.get("/health").json()["status"] == "UP"


def test_async_predict(serve):
    client = serve(AsyncEcho)
    results = client.post("/predict", json=body(1, 2)).json()["results"]
    assert [r["result"][0]["value"]["choices"] for r in results] == [["negative"], ["negative"]]


def test_a_sync_predict_runs_in_relaxmls_model_thread_fast_or_slow(serve, monkeypatch):
    """A call the last one says is short is waited for by the loop (`short_wait`), a longer
    one awaited; either way `predict` runs in relaxml's model thread, not on the loop."""
    wait = 0.05  # "short" made roomy, so a busy test machine cannot make a fast call long
    monkeypatch.setattr(modelcall, "SHORT_WAIT", wait)

    class Where(LabelStudioModel):
        def __init__(self) -> None:
            self.delay = 0.0
            self.threads: list[str] = []

        def predict(self, tasks: list[Any], context: Any) -> list[dict[str, Any]]:
            self.threads.append(threading.current_thread().name)
            time.sleep(self.delay)
            return [{"result": []} for _ in tasks]

    client = serve(Where)
    backend = backend_of(client)
    calls = backend.calls
    assert calls.short_wait(1) == 0  # nothing measured yet: awaited
    for _ in range(3):
        assert client.post("/predict", json=body(1, 2)).status_code == 200
    assert calls.short_wait(2) == wait  # the calls were fast
    assert calls.short_wait(1) == wait  # fewer tasks are taken to cost no less
    assert calls.short_wait(10_000_000) == 0  # far more tasks: not short
    backend.model.delay = 0.1
    assert client.post("/predict", json=body(1)).status_code == 200  # waited for, then awaited
    assert calls.short_wait(1) == 0  # the last call took 100 ms
    assert client.post("/predict", json=body(1)).status_code == 200
    assert len(backend.model.threads) == 5
    assert all(name.startswith("relaxml-predict") for name in backend.model.threads)


def test_max_batch_size_splits_large_requests_and_keeps_order(serve):
    class Chunky(Echo):
        max_batch_size = 4

    client = serve(Chunky)
    ids = list(range(1, 11))
    results = client.post("/predict", json=body(*ids)).json()["results"]
    assert [r["result"][0]["id"] for r in results] == [f"r{i}" for i in ids]
    assert [c[0] for c in backend_of(client).model.calls] == [ids[0:4], ids[4:8], ids[8:10]]


def test_empty_task_list_gets_empty_results_without_calling_the_model(serve):
    client = serve(Echo)
    assert client.post("/predict", json=body()).json()["results"] == []
    assert backend_of(client).model.calls == []


def test_predict_without_setup_builds_the_project_from_the_request(serve):
    client = serve(Echo)
    request = body(5)
    del request["project"]
    assert client.post("/predict", json=request).status_code == 200
    _, context = backend_of(client).model.calls[0]
    assert context.project.uid == "1"


def test_model_is_constructed_once_per_app_at_startup(serve):
    class Counted(Echo):
        instances = 0

    client = serve(Counted)
    assert Counted.instances == 1
    for _ in range(5):
        client.post("/setup", json={"project": "1.2"})
        client.post("/predict", json=body(1))
    assert Counted.instances == 1


def test_model_is_not_constructed_by_create_app(serve):
    from relaxml import create_app

    class Lazy(Echo):
        instances = 0

    create_app(Lazy)
    assert Lazy.instances == 0


def test_two_apps_in_one_process_keep_their_own_state(serve):
    class Other(Echo):
        model_version = "other-7"

    a, b = serve(Echo), serve(Other)
    a.post("/predict", json=body(1))
    assert len(backend_of(a).model.calls) == 1
    assert backend_of(b).model.calls == []
    assert b.get("/health").json()["model_version"] == "other-7"
    assert a.get("/health").json()["model_version"] == "echo-1"


def test_an_instance_can_be_served(serve):
    instance = Echo()
    client = serve(instance)
    client.post("/predict", json=body(1))
    assert len(instance.calls) == 1


def test_create_app_refuses_what_it_cannot_serve():
    from relaxml import create_app

    class Abstract(LabelStudioModel):
        pass

    with pytest.raises(TypeError, match="does not implement predict"):
        create_app(Abstract)
    with pytest.raises(TypeError, match="LabelStudioModel subclass or instance"):
        create_app(object)  # type: ignore[arg-type]


def test_an_empty_model_version_stops_startup():
    from starlette.testclient import TestClient

    from relaxml import create_app

    class NoVersion(Echo):
        def __init__(self) -> None:
            super().__init__()
            self.model_version = ""

    with pytest.raises(TypeError, match="model_version must be a non-empty string"):
        TestClient(create_app(NoVersion)).__enter__()


CONFIG = """<View><Text name="text" value="$text"/>
<Choices name="sentiment" toName="text">
<Choice value="positive"/><Choice value="negative"/>
</Choices></View>"""


def unknown_label(tasks):
    region = {"from_name": "sentiment", "to_name": "text", "type": "choices"}
    return [{"result": [{**region, "value": {"choices": ["meh"]}}]} for _ in tasks]


def test_predictions_that_do_not_fit_the_config_are_warned_about_once(serve, caplog):
    client = serve(scripted(unknown_label))
    request = {**body(1, 2), "label_config": CONFIG}
    for _ in range(3):
        assert client.post("/predict", json=request).status_code == 200
    warnings = [r.getMessage() for r in caplog.records if "editor drops" in r.getMessage()]
    assert len(warnings) == 1
    assert "Squirrel.predict, task 1" in warnings[0]
    assert "meh" in warnings[0]


def test_validate_error_refuses_them(serve):
    client = serve(scripted(unknown_label), validate="error")
    answer = client.post("/predict", json={**body(1), "label_config": CONFIG})
    assert answer.status_code == 500
    assert answer.json()["error"] == "model_output"
    assert "meh" in answer.json()["detail"]


def test_validate_off_skips_the_check(serve, caplog):
    client = serve(scripted(unknown_label), validate="off")
    assert client.post("/predict", json={**body(1), "label_config": CONFIG}).status_code == 200
    assert not [r for r in caplog.records if "editor drops" in r.getMessage()]
