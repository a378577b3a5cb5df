"""Background and auto delivery: the outbox, retries, recovery, and what /jobs reports."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaxml import Context, Prediction, Task
from relaxml._delivery.outbox import Outbox
from relaxml.testing import FakeLabelStudio

from .conftest import backend_of, wait_for
from .support.models import Echo, choice

PROJECT = 7


class Background(Echo):
    delivery = "background"


class Steady(Background):
    """100 ms per call of at most 10 tasks: a job of 100 tasks is predicted for a second."""

    max_batch_size = 10

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        time.sleep(0.1)
        return super().predict(tasks, context)


class Picky(Echo):
    """Raises on tasks whose data says boom."""

    delivery = "background"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        if any(t.data.get("boom") for t in tasks):
            raise ValueError("cannot read this one")
        return super().predict(tasks, context)


@pytest.fixture
def fake() -> Iterator[FakeLabelStudio]:
    """A Label Studio that makes the tasks it is sent predictions for on first sight."""
    with FakeLabelStudio(accept_unknown_tasks=True) as server:
        server.add_project(id=PROJECT)
        yield server


def setup(client: Any, fake: FakeLabelStudio, token: str | None = None) -> None:
    body = {"project": f"{PROJECT}.1", "hostname": fake.url, "access_token": token or fake.api_key}
    assert client.post("/setup", json=body).status_code == 200


def tasks(*ids: int, **data: Any) -> dict[str, Any]:
    return {
        "project": f"{PROJECT}.1",
        "tasks": [{"id": i, "data": {"text": str(i), **data}, "project": PROJECT} for i in ids],
    }


def job_of(client: Any, job_id: str) -> dict[str, Any]:
    return dict(client.get(f"/jobs/{job_id}").json())


def test_background_answers_at_once_and_delivers_every_prediction(serve, fake):
    client = serve(Background)
    setup(client, fake)
    start = time.perf_counter()
    answer = client.post("/predict", json=tasks(*range(1, 201))).json()
    assert time.perf_counter() - start < 1.0
    assert answer["results"] == []
    assert answer["queued"] == 200
    wait_for(lambda: job_of(client, answer["job"])["state"] == "done")
    assert fake.predictions_by_task() == dict.fromkeys(range(1, 201), 1)
    stored = fake.predictions[0]
    assert stored["model_version"] == "echo-1"
    assert stored["result"] == [choice(Task(id=stored["task"], data={}))]
    job = job_of(client, answer["job"])
    assert (job["total"], job["done"], job["failed"], job["queued"]) == (200, 200, 0, 0)
    assert job["rate"] > 0


def test_retrieve_twice_does_not_queue_twice(serve, fake):
    client = serve(Background)
    setup(client, fake)
    fake.fail("/", 503, times=10**9)  # down: keep the first job in flight
    first = client.post("/predict", json=tasks(1, 2, 3)).json()
    second = client.post("/predict", json=tasks(2, 3, 4)).json()
    assert (first["queued"], second["queued"]) == (3, 1)
    fake.recover()
    wait_for(lambda: len(fake.predictions_by_task()) == 4)
    time.sleep(0.3)
    assert fake.predictions_by_task() == {1: 1, 2: 1, 3: 1, 4: 1}


def test_label_studio_down_then_up_loses_nothing(serve, fake):
    client = serve(Background)
    setup(client, fake)
    fake.fail("/", 503, times=10**9)  # down
    job = client.post("/predict", json=tasks(*range(1, 51))).json()["job"]
    wait_for(lambda: job_of(client, job)["delivering"] == 50)
    assert "503" in job_of(client, job)["errors"][0]["error"]
    fake.recover()
    wait_for(lambda: job_of(client, job)["state"] == "done", timeout=20)
    assert fake.predictions_by_task() == dict.fromkeys(range(1, 51), 1)
    metrics = client.get("/metrics").text
    assert 'relaxml_deliveries_total{outcome="retried"}' in metrics
    assert 'relaxml_deliveries_total{outcome="ok"} 50' in metrics


def test_a_lost_response_does_not_store_twice(serve, fake):
    client = serve(Background)
    setup(client, fake)
    # Label Studio stores, but relaxml sees a 500
    fake.fail(f"/api/projects/{PROJECT}/import", 500, times=10**9, lost=True)
    job = client.post("/predict", json=tasks(1, 2, 3)).json()["job"]
    wait_for(lambda: job_of(client, job)["errors"])
    fake.recover()
    wait_for(lambda: job_of(client, job)["state"] == "done", timeout=20)
    assert fake.predictions_by_task() == {1: 1, 2: 1, 3: 1}


def test_restart_resumes_queued_and_unconfirmed_work(serve, fake, tmp_path):
    data_dir = str(tmp_path / "data")
    first = serve(Background, data_dir=data_dir)
    setup(first, fake)
    fake.fail("/", 503, times=10**9)  # down
    job = first.post("/predict", json=tasks(*range(1, 21))).json()["job"]
    wait_for(lambda: job_of(first, job)["delivering"] == 20)
    first.__exit__(None, None, None)
    # A crash mid-send leaves items in "sending"; Label Studio may or may not have them.
    db = sqlite3.connect(Path(data_dir) / "relaxml.sqlite3")
    db.execute("UPDATE items SET state = 'sending', next_at = 0 WHERE task_id <= 10")
    db.commit()
    db.close()
    fake.recover()
    fake.store_prediction({"task": 1, "model_version": "echo-1", "result": []})

    second = serve(Background, data_dir=data_dir)
    setup(second, fake)
    wait_for(lambda: job_of(second, job)["state"] == "done", timeout=20)
    assert fake.predictions_by_task() == dict.fromkeys(range(1, 21), 1)


def test_one_failing_task_does_not_stop_the_rest(serve, fake):
    client = serve(Picky)
    setup(client, fake)
    body = tasks(1, 2, 3)
    body["tasks"][1]["data"]["boom"] = True
    job = client.post("/predict", json=body).json()["job"]
    wait_for(lambda: job_of(client, job)["state"] == "done")
    status = job_of(client, job)
    assert (status["done"], status["failed"]) == (2, 1)
    assert status["errors"] == [
        {
            "task": 2,
            "state": "failed",
            "error": "Picky.predict raised ValueError: cannot read this one",
        }
    ]
    assert sorted(fake.predictions_by_task()) == [1, 3]


def test_a_task_label_studio_refuses_fails_alone(serve, fake):
    client = serve(Background)
    setup(client, fake)
    fake.accept_unknown_tasks = False  # tasks 1 and 3 exist, 2 was deleted
    fake.add_task(PROJECT, {"text": "1"}, id=1)
    fake.add_task(PROJECT, {"text": "3"}, id=3)
    job = client.post("/predict", json=tasks(1, 2, 3)).json()["job"]
    wait_for(lambda: job_of(client, job)["state"] == "done")
    assert sorted(fake.predictions_by_task()) == [1, 3]
    assert job_of(client, job)["failed"] == 1


def test_auto_is_inline_for_small_requests_and_background_for_bulk(serve, fake):
    client = serve(Echo, auto_inline_max=5)
    setup(client, fake)
    small = client.post("/predict", json=tasks(1, 2)).json()
    assert len(small["results"]) == 2
    bulk = client.post("/predict", json=tasks(*range(10, 30))).json()
    assert bulk["results"] == []
    wait_for(lambda: len(fake.predictions_by_task()) == 20)


def test_auto_stays_inline_when_label_studio_refuses_the_key(serve, fake, caplog):
    client = serve(Echo, auto_inline_max=5)
    setup(client, fake, token="legacy-token-refused")
    answer = client.post("/predict", json=tasks(*range(10, 30))).json()
    assert len(answer["results"]) == 20
    assert any("answering 20 tasks inline" in r.getMessage() for r in caplog.records)
    assert any("LABEL_STUDIO_API_KEY" in r.getMessage() for r in caplog.records)


def test_interactive_is_inline_even_in_background_mode(serve, fake):
    client = serve(Background)
    body = tasks(1)
    body["params"] = {"context": {"result": []}}
    assert len(client.post("/predict", json=body).json()["results"]) == 1


def test_api_key_setting_overrides_the_setup_token(serve, fake):
    client = serve(Background, label_studio_api_key=fake.api_key, label_studio_url=fake.url)
    setup(client, fake, token="stale-legacy-token")
    job = client.post("/predict", json=tasks(1)).json()["job"]
    wait_for(lambda: job_of(client, job)["state"] == "done")


def test_model_can_send_predictions_itself(serve, fake):
    client = serve(Echo)
    setup(client, fake)
    model = backend_of(client).model
    job = model.send_predictions({5: Prediction(result=[], score=0.4), 6: None}, project=PROJECT)
    wait_for(lambda: job_of(client, job)["state"] == "done")
    assert fake.predictions_by_task() == {5: 1, 6: 1}


def test_send_predictions_needs_a_served_model():
    with pytest.raises(RuntimeError, match="only while relaxml serves"):
        Echo().send_predictions({1: None}, project=1)


def test_jobs_lists_jobs_and_training(serve, fake):
    client = serve(Background)
    setup(client, fake)
    job = client.post("/predict", json=tasks(1, 2)).json()["job"]
    wait_for(lambda: job_of(client, job)["state"] == "done")
    listing = client.get("/jobs").json()
    assert listing["jobs"][0]["id"] == job
    assert listing["outbox"]["done"] == 2
    assert listing["training"] == []
    assert client.get("/jobs/nope").status_code == 404


def test_metrics_are_prometheus_text(serve):
    client = serve(Echo)
    client.get("/health")
    client.post("/predict", json=tasks(1))
    answer = client.get("/metrics")
    assert answer.headers["content-type"].startswith("text/plain")
    text = answer.text
    assert "# TYPE relaxml_requests_total counter" in text
    assert 'relaxml_requests_total{method="GET",route="/health",status="200"} 1' in text
    assert 'relaxml_request_duration_seconds_bucket{route="/predict",le="+Inf"} 1' in text
    assert 'relaxml_tasks_predicted_total{mode="inline"} 1' in text
    assert 'relaxml_outbox_items{state="queued"} 0' in text
    assert 'relaxml_model_info{model="Echo",version="echo-1"} 1' in text


def test_a_job_stored_with_an_unusable_url_waits_then_goes_with_label_studio_url(
    serve, fake, tmp_path
):
    data_dir = str(tmp_path / "data")
    first = serve(Background, data_dir=data_dir)
    job = first.post("/predict", json=tasks(1, 2)).json()["job"]  # no /setup: no URL known
    first.__exit__(None, None, None)
    db = sqlite3.connect(Path(data_dir) / "relaxml.sqlite3")
    db.execute("UPDATE jobs SET hostname = 'ls.example:8080'")  # stored by an older version
    db.commit()
    db.close()

    second = serve(Background, data_dir=data_dir)
    time.sleep(1.0)
    assert job_of(second, job)["failed"] == 0  # waiting, not given up
    second.__exit__(None, None, None)

    third = serve(
        Background, data_dir=data_dir, label_studio_url=fake.url, label_studio_api_key=fake.api_key
    )
    wait_for(lambda: job_of(third, job)["state"] == "done", timeout=20)
    assert fake.predictions_by_task() == {1: 1, 2: 1}


def test_a_job_predicted_quickly_goes_in_full_imports_only(serve, fake):
    client = serve(Background, delivery_batch=50)  # Echo: 32 tasks per predict call
    setup(client, fake)
    job = client.post("/predict", json=tasks(*range(1, 201))).json()["job"]
    wait_for(lambda: job_of(client, job)["state"] == "done")
    assert fake.imports == [50, 50, 50, 50]
    assert fake.predictions_by_task() == dict.fromkeys(range(1, 201), 1)

    small = client.post("/predict", json=tasks(*range(300, 320))).json()["job"]
    wait_for(lambda: job_of(client, small)["state"] == "done")
    assert fake.imports[4:] == [20]  # the rest goes as soon as the job is predicted


def test_predictions_of_a_slow_job_wait_for_a_full_import_at_most_the_hold(serve, fake):
    client = serve(Steady, delivery_hold=0.05)  # the sender still looks every 0.5 s
    setup(client, fake)
    deliverer = backend_of(client).deliverer
    assert (deliverer.send_size, deliverer.hold) == (5000, 0.05)
    job = client.post("/predict", json=tasks(*range(1, 101))).json()["job"]
    wait_for(lambda: fake.imports)
    assert job_of(client, job)["state"] == "predicting"  # delivered while still predicted
    wait_for(lambda: job_of(client, job)["state"] == "done")
    assert len(fake.imports) > 1
    assert sum(fake.imports) == 100
    assert fake.predictions_by_task() == dict.fromkeys(range(1, 101), 1)


def queued_job(outbox: Outbox, *task_ids: int) -> str:
    job, _ = outbox.add_job(
        project_uid=f"{PROJECT}.1",
        project_id=PROJECT,
        model_version="v1",
        label_config=None,
        hostname=None,
        tasks=[{"id": i, "data": {"text": str(i)}} for i in task_ids],
    )
    return job.id


def predict(outbox: Outbox, count: int) -> list[int]:
    claimed = outbox.claim_to_predict(count)
    assert claimed is not None
    job, items = claimed
    outbox.predicted(job.id, {i.task_id: [{"result": [], "score": 0.5}] for i in items})
    return [i.task_id for i in items]


def sent(claimed: tuple[Any, list[Any]] | None) -> list[int]:
    assert claimed is not None
    return [item.task_id for item in claimed[1]]


def test_the_outbox_holds_a_job_still_predicted_until_a_full_import(tmp_path: Path):
    outbox = Outbox(tmp_path / "db.sqlite3")
    queued_job(outbox, *range(1, 11))
    assert predict(outbox, 4) == [1, 2, 3, 4]
    assert outbox.claim_to_send(5, hold=60) is None  # 4 ready of 5, 6 still to predict
    assert outbox.claim_to_send(5) is not None  # no hold: whatever is ready goes
    outbox.recover()  # back to ready (to be verified)
    predict(outbox, 4)
    assert sent(outbox.claim_to_send(5, hold=60)) == [1, 2, 3, 4, 5]  # a full import
    assert outbox.claim_to_send(5, hold=60) is None  # 3 ready, 2 still to predict
    predict(outbox, 4)  # the last 2: the job is predicted
    assert sent(outbox.claim_to_send(5, hold=60)) == [6, 7, 8, 9, 10]
    assert outbox.claim_to_send(5, hold=60) is None
    outbox.close()


def test_the_outbox_holds_predictions_at_most_the_hold(tmp_path: Path):
    outbox = Outbox(tmp_path / "db.sqlite3")
    queued_job(outbox, *range(1, 11))
    predict(outbox, 3)
    assert outbox.claim_to_send(5, hold=0.2) is None
    time.sleep(0.25)
    assert sent(outbox.claim_to_send(5, hold=0.2)) == [1, 2, 3]
    outbox.close()


def test_the_outbox_sends_a_due_retry_at_once(tmp_path: Path):
    outbox = Outbox(tmp_path / "db.sqlite3")
    job = queued_job(outbox, *range(1, 11))
    predict(outbox, 2)
    assert sent(outbox.claim_to_send(5)) == [1, 2]
    outbox.retry_later(job, [1, 2], "503", delay=0.0)
    assert sent(outbox.claim_to_send(5, hold=60)) == [1, 2]
    outbox.close()


def test_a_held_job_does_not_hold_back_another(tmp_path: Path):
    outbox = Outbox(tmp_path / "db.sqlite3")
    first = queued_job(outbox, *range(1, 11))
    predict(outbox, 3)  # the first job: 3 ready, 7 still to predict
    second, _ = outbox.add_job(  # predictions a model sends itself: ready at once
        project_uid=f"{PROJECT}.1",
        project_id=PROJECT,
        model_version="v1",
        label_config=None,
        hostname=None,
        predictions=[(20, [{"result": []}]), (21, [{"result": []}])],
    )
    claimed = outbox.claim_to_send(50, hold=60)
    assert claimed is not None
    assert claimed[0].id == second.id
    assert sent(claimed) == [20, 21]
    assert outbox.claim_to_send(50, hold=60) is None
    predict(outbox, 7)
    claimed = outbox.claim_to_send(50, hold=60)
    assert claimed is not None
    assert claimed[0].id == first
    assert sent(claimed) == list(range(1, 11))
    outbox.close()
