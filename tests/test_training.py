"""Training: the durable event queue, train_every, cancel, versions that survive restarts,
hot swap between workers, rollback, and the training-data helper."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relaxml import Context, LabelStudioModel, Prediction, Task, TrainingEvent
from relaxml.cli import main
from relaxml.labelstudio._trainingdata import annotated_tasks
from relaxml.labelstudio.client import LabelStudioClient

from .conftest import backend_of, first, wait_for
from .support.models import Trainable, choice


class Counter(LabelStudioModel):
    """Learns how many annotations it has seen; saves and loads that number."""

    model_version = "count-0"
    fits: list[int] = []  # noqa: RUF012 - shared across instances on purpose (workers)

    def __init__(self) -> None:
        self.seen = 0

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[choice(t, label=str(self.seen))]) for t in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        type(self).fits.append(len(event.annotations))
        self.seen += len(event.annotations) or 1
        return f"count-{self.seen}"

    def save(self, path: Path) -> None:
        (path / "seen.json").write_text(json.dumps(self.seen))

    def load(self, path: Path) -> None:
        self.seen = json.loads((path / "seen.json").read_text())


def label_of(client: Any) -> str:
    body = {"tasks": [{"id": 1, "data": {}}]}
    return str(
        client.post("/predict", json=body).json()["results"][0]["result"][0]["value"]["choices"][0]
    )


def annotation_hook(captured: list[dict[str, Any]]) -> dict[str, Any]:
    return first(captured, "/webhook", action="ANNOTATION_CREATED")


def start_hook(captured: list[dict[str, Any]]) -> dict[str, Any]:
    return first(captured, "/webhook", action="START_TRAINING")


def test_train_every_n_annotations(serve, captured):
    client = serve(Trainable, train_every=3)
    model = backend_of(client).model
    for _ in range(2):
        assert (
            client.post("/webhook", json=annotation_hook(captured)).json()["status"] == "accepted"
        )
    time.sleep(1.0)
    assert model.events == []
    client.post("/webhook", json=annotation_hook(captured))
    wait_for(lambda: len(model.events) == 1)
    assert len(model.events[0].annotations) == 3


def test_start_training_does_not_wait_for_train_every(serve, captured):
    client = serve(Trainable, train_every=100)
    client.post("/webhook", json=start_hook(captured))
    wait_for(lambda: backend_of(client).model.events)


def test_a_run_can_be_cancelled(serve, captured):
    class Patient(Trainable):
        def fit(self, event: TrainingEvent) -> str | None:
            self.started.set()
            while not event.should_stop():
                time.sleep(0.02)
            return "should-not-be-used"

    client = serve(Patient)
    client.post("/webhook", json=start_hook(captured))
    assert backend_of(client).model.started.wait(5)
    assert client.post("/jobs/run-1/cancel").json() == {"job": "run-1", "status": "cancelling"}
    wait_for(lambda: client.get("/jobs/run-1").json()["state"] == "cancelled")
    assert client.get("/health").json()["model_version"] == "train-0"
    assert client.post("/jobs/run-9/cancel").status_code == 404


def test_a_prediction_job_can_be_cancelled(serve):
    class Background(Trainable):
        delivery = "background"

    client = serve(Background)  # no Label Studio: items wait, then are cancelled
    job = client.post("/predict", json={"tasks": [{"id": i, "data": {}} for i in range(5)]}).json()[
        "job"
    ]
    wait_for(lambda: client.get(f"/jobs/{job}").json()["delivering"] == 5)
    wait_for(lambda: client.post(f"/jobs/{job}/cancel").json()["cancelled"] == 5)
    assert client.get(f"/jobs/{job}").json()["failed"] == 5


def test_job_status_answers_label_studio_shape(serve, captured):
    client = serve(Trainable)
    job = client.post("/webhook", json=start_hook(captured)).json()["job"]
    assert job.startswith("event-")
    wait_for(lambda: client.post("/job_status", json={"job": job}).json()["status"] == "succeeded")
    answer = client.post("/job_status", json={"job": job}).json()
    assert answer["version"] == "train-1"
    assert answer["annotations"] == 0


def test_versions_survive_a_restart(serve, captured, tmp_path):
    data_dir = str(tmp_path / "data")
    first_app = serve(Counter, data_dir=data_dir)
    first_app.post("/webhook", json=annotation_hook(captured))
    wait_for(lambda: first_app.get("/health").json()["model_version"] == "count-1")
    assert (tmp_path / "data" / "versions" / "count-1" / "seen.json").read_text() == "1"
    first_app.__exit__(None, None, None)

    second_app = serve(Counter, data_dir=data_dir)
    assert second_app.get("/health").json()["model_version"] == "count-1"
    assert label_of(second_app) == "1"  # the trained state was loaded, not just the name
    versions = second_app.get("/versions").json()
    assert versions["versions"] == ["count-0", "count-1"]
    assert versions["history"][1]["artifacts"] is True


def test_workers_train_once_and_all_swap(serve, captured, tmp_path):
    """Two apps on one data directory behave like two worker processes."""
    Counter.fits = []
    data_dir = str(tmp_path / "shared")
    leader = serve(Counter, data_dir=data_dir, version_poll=0.1)
    follower = serve(Counter, data_dir=data_dir, version_poll=0.1)
    assert backend_of(leader).leader.held
    assert not backend_of(follower).leader.held
    for _ in range(3):  # events arrive at the follower; the leader trains
        follower.post("/webhook", json=start_hook(captured))
    wait_for(lambda: follower.get("/health").json()["model_version"] != "count-0")
    wait_for(lambda: not backend_of(leader).training_store.pending())
    wait_for(lambda: all(r.state != "running" for r in backend_of(leader).training_store.runs()))
    assert 1 <= len(Counter.fits) <= 2  # coalesced, and never once per worker
    final = leader.get("/health").json()["model_version"]
    wait_for(lambda: follower.get("/health").json()["model_version"] == final)
    assert label_of(follower) == label_of(leader)


def test_old_version_serves_until_the_new_one_is_loaded(serve, tmp_path):
    loading = threading.Event()
    release = threading.Event()

    class SlowLoad(Counter):
        def load(self, path: Path) -> None:
            loading.set()
            release.wait(5)
            super().load(path)

    data_dir = str(tmp_path / "d")
    client = serve(SlowLoad, data_dir=data_dir, version_poll=0.1)
    backend = backend_of(client)
    path = tmp_path / "d" / "versions" / "count-7"
    path.mkdir(parents=True)
    (path / "seen.json").write_text("7")
    backend.versions.record("count-7", path=path)
    assert loading.wait(5)
    assert client.get("/health").json()["model_version"] == "count-0"
    assert label_of(client) == "0"
    release.set()
    wait_for(lambda: client.get("/health").json()["model_version"] == "count-7")
    assert label_of(client) == "7"


def test_rollback_with_the_cli(serve, captured, tmp_path):
    data_dir = str(tmp_path / "data")
    client = serve(Counter, data_dir=data_dir, version_poll=0.1)
    client.post("/webhook", json=annotation_hook(captured))
    wait_for(lambda: client.get("/health").json()["model_version"] == "count-1")

    runner = CliRunner()
    listing = runner.invoke(main, ["versions", "list", "--data-dir", data_dir])
    assert listing.exit_code == 0
    assert "* count-1" in listing.output
    used = runner.invoke(main, ["versions", "use", "count-0", "--data-dir", data_dir])
    assert used.exit_code == 0, used.output
    wait_for(lambda: client.get("/health").json()["model_version"] == "count-0")
    assert label_of(client) == "0"
    unknown = runner.invoke(main, ["versions", "use", "nope", "--data-dir", data_dir])
    assert unknown.exit_code == 2
    assert "Unknown version 'nope'" in unknown.output
    missing = runner.invoke(main, ["versions", "list", "--data-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2


def test_an_interrupted_run_is_retried(serve, captured, tmp_path):
    data_dir = str(tmp_path / "data")
    app = serve(Trainable, data_dir=data_dir)
    backend = backend_of(app)
    backend.model.gate.clear()
    app.post("/webhook", json=start_hook(captured))
    assert backend.model.started.wait(5)
    app.__exit__(None, None, None)  # stops while fit runs, like a crash
    backend.model.gate.set()

    again = serve(Trainable, data_dir=data_dir)
    runs = backend_of(again).training_store
    wait_for(lambda: any(r.state == "succeeded" for r in runs.runs()))
    states = sorted(r.state for r in runs.runs())
    assert states == ["failed", "succeeded"]
    assert "interrupted" in next(r.error for r in runs.runs() if r.state == "failed")


def test_annotated_tasks_pages_through_label_studio(httpserver_tasks):
    url, seen = httpserver_tasks
    client = LabelStudioClient(url, "key-0123456789")
    try:
        tasks = list(annotated_tasks(client, 3, page_size=2))
        assert [t["id"] for t in tasks] == [1, 3, 4]
        assert all(not a.get("was_cancelled") for t in tasks for a in t["annotations"])
        assert seen == [1, 2, 3]
        recent = list(annotated_tasks(client, 3, page_size=2, since=1_800_000_000))
        assert [t["id"] for t in recent] == [4]
    finally:
        client.close()


class ReadsMedia(LabelStudioModel):
    """Trains on the bytes of the files its annotated tasks name."""

    model_version = "media-0"

    def __init__(self) -> None:
        self.read: list[bytes] = []

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return []

    def fit(self, event: TrainingEvent) -> str | None:
        for task in event.tasks:
            self.read.append(event.local_path(task["data"]["image"], task).read_bytes())
        return f"media-{len(self.read)}"


def test_fit_reads_a_task_s_media_as_predict_does(serve, tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.png").write_bytes(b"first image")
    model = ReadsMedia()
    client = serve(model, local_files_root=str(tmp_path))
    task = {"id": 3, "project": 1, "data": {"image": "/data/local-files/?d=set/a.png"}}
    body = {"action": "ANNOTATION_CREATED", "project": {"id": 1}, "task": task,
            "annotation": {"id": 9, "task": 3, "result": []}}  # fmt: skip
    assert client.post("/webhook", json=body).status_code in (200, 201)
    wait_for(lambda: client.get("/health").json()["model_version"] == "media-1")
    assert model.read == [b"first image"]


def test_local_path_outside_a_run_says_so():
    event = TrainingEvent(action="START_TRAINING", project_id=1)
    with pytest.raises(RuntimeError, match="while relaxml trains"):
        event.local_path("/data/local-files/?d=a.png")


class Frozen(LabelStudioModel):
    """A model that never trains; its version names the weights it loads."""

    weights = "a"

    def __init__(self) -> None:
        self.model_version = f"weights-{self.weights}"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return []


def test_new_weights_of_an_untrained_model_are_served_without_a_warning(
    serve, tmp_path, log_output, monkeypatch
):
    first = serve(Frozen, data_dir=str(tmp_path))
    assert first.get("/health").json()["model_version"] == "weights-a"
    first.__exit__(None, None, None)
    monkeypatch.setattr(Frozen, "weights", "b")  # restarted with other weights
    second = serve(Frozen, data_dir=str(tmp_path))
    assert second.get("/health").json()["model_version"] == "weights-b"
    assert second.get("/versions").json()["current"] == "weights-b"
    assert "cannot serve" not in log_output.getvalue()
    assert "the data directory's version weights-a was never trained" in log_output.getvalue()
