"""The data directory stays small: delivered items fold into counts, old jobs and runs go."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relaxml._delivery.outbox import Outbox
from relaxml._training import store as trainingstore
from relaxml._training.store import TrainingStore
from relaxml.testing import FakeLabelStudio

from .conftest import backend_of, wait_for
from .support.models import Echo

PROJECT = 7


class Background(Echo):
    delivery = "background"


@pytest.fixture
def fake() -> Iterator[FakeLabelStudio]:
    server = FakeLabelStudio(accept_unknown_tasks=True)
    yield server
    server.close()


def rows(outbox: Outbox, table: str) -> int:
    return int(
        outbox._store.read(lambda db: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone())[0]
    )


def queue(outbox: Outbox, *task_ids: int, state: str = "ready") -> str:
    job, _ = outbox.add_job(
        project_uid="7.1",
        project_id=PROJECT,
        model_version="v1",
        label_config=None,
        hostname=None,
        predictions=[(i, [{"result": [], "score": 0.0}]) for i in task_ids],
    )
    if state == "done":
        outbox.delivered(job.id, task_ids)
    return job.id


def test_delivered_items_fold_into_their_jobs_count_over_http(serve, fake):
    client = serve(Background)
    body = {"project": f"{PROJECT}.1", "hostname": fake.url, "access_token": fake.api_key}
    assert client.post("/setup", json=body).status_code == 200
    tasks = [{"id": i, "data": {"text": str(i)}, "project": PROJECT} for i in range(1, 51)]
    job = client.post("/predict", json={"project": f"{PROJECT}.1", "tasks": tasks}).json()["job"]
    wait_for(lambda: client.get(f"/jobs/{job}").json()["state"] == "done")
    outbox = backend_of(client).outbox
    assert rows(outbox, "items") == 50

    assert outbox.compact(settle=0) == (50, 0)

    assert rows(outbox, "items") == 0
    answer = client.get(f"/jobs/{job}").json()
    assert (answer["state"], answer["total"], answer["done"], answer["finished"]) == (
        "done",
        50,
        50,
        50,
    )
    assert answer["last_update"] is not None
    assert outbox.counts()["done"] == 50
    # dedupe looks at active items only, as before: delivered tasks can be queued again
    again = client.post("/predict", json={"project": f"{PROJECT}.1", "tasks": tasks}).json()
    assert again["queued"] == 50


def test_finished_jobs_are_forgotten_after_retention_and_active_ones_never(tmp_path: Path):
    outbox = Outbox(tmp_path / "db.sqlite3")
    finished = queue(outbox, 1, 2, state="done")
    active = queue(outbox, 3, 4)  # ready: still to be sent

    assert outbox.compact(settle=0, retention=0) == (2, 1)

    assert outbox.job(finished) is None
    assert outbox.job(active) is not None
    assert outbox.counts(active)["ready"] == 2
    assert rows(outbox, "archived") == 0
    outbox.close()


def test_at_most_max_finished_jobs_are_kept(tmp_path: Path):
    outbox = Outbox(tmp_path / "db.sqlite3")
    jobs = []
    for i in range(5):
        jobs.append(queue(outbox, 100 + i, state="done"))
        time.sleep(0.01)  # distinct created_at, newest last
    active = queue(outbox, 200)

    outbox.compact(settle=0, max_finished=2)

    kept = {job.id for job in outbox.jobs()}
    assert kept == {jobs[-1], active}  # the two newest jobs; the active one always stays
    outbox.close()


def test_old_training_runs_and_their_events_go(tmp_path: Path):
    store = TrainingStore(tmp_path / "db.sqlite3")
    for i in range(5):
        store.add_event("1", "START_TRAINING", {"n": i})
        run_id, _ = store.start_run("1", "START_TRAINING")
        store.finish_run(run_id, "succeeded", version=f"v{i}", error=None, annotations=0)

    store.prune(max_runs=2)

    assert [run.id for run in store.runs()] == [5, 4]
    events: Any = store._db.read(
        lambda db: db.execute("SELECT run_id FROM training_events ORDER BY id").fetchall()
    )
    assert events == [(4,), (5,)]
    store.close()


def test_claimed_events_are_capped_but_a_running_runs_events_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(trainingstore, "MAX_FINISHED_EVENTS", 2)
    store = TrainingStore(tmp_path / "db.sqlite3")
    for i in range(5):
        store.add_event("1", "ANNOTATION_CREATED", {"n": i})
    finished, _ = store.start_run("1", "START_TRAINING")
    store.finish_run(finished, "succeeded", version=None, error=None, annotations=0)
    for i in range(3):
        store.add_event("2", "ANNOTATION_CREATED", {"n": i})
    running, _ = store.start_run("2", "START_TRAINING")

    store.prune()

    events: Any = store._db.read(
        lambda db: db.execute(
            "SELECT run_id, COUNT(*) FROM training_events GROUP BY run_id"
        ).fetchall()
    )
    assert dict(events) == {running: 3}  # the finished run's 5 are past the cap; running: kept
    store.close()
