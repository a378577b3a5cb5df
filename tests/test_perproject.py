"""A model with `per_project = True` served in-process: one instance per project, its own
versions, bounded residency, and a slow build that holds up no other project."""

from __future__ import annotations

import copy
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner

from relaxml import Context, LabelStudioModel, Prediction, Task
from relaxml._training.versions import VersionStore
from relaxml.cli import main

from .conftest import backend_of, first, wait_for
from .support.worker_model import ProjectTally, Tally


@pytest.fixture
def bodies(captured: list[dict[str, Any]]) -> Any:
    setup = first(captured, "/setup")
    predict = first(captured, "/predict")
    hook = first(captured, "/webhook", action="START_TRAINING")

    def make(kind: str, project: int) -> dict[str, Any]:
        if kind == "setup":
            return {**setup, "project": f"{project}.1795846025"}
        if kind == "predict":
            body = copy.deepcopy(predict)
            body["project"] = f"{project}.1795846025"
            for task in body["tasks"]:
                task["project"] = project
            return body
        body = copy.deepcopy(hook)
        body["project"]["id"] = project
        return body

    return make


def train(client: Any, hook: dict[str, Any]) -> dict[str, Any]:
    job = client.post("/webhook", json=hook).json()["job"]
    return wait_for(lambda: (r := client.get(f"/jobs/{job}").json()).get("state") != "queued"
                    and r.get("state") != "running" and r)  # fmt: skip


def test_two_projects_train_their_own_versions(serve, bodies):
    client = serve(ProjectTally)
    assert client.post("/setup", json=bodies("setup", 1)).json() == {"model_version": "project-0"}
    assert client.post("/setup", json=bodies("setup", 2)).json() == {"model_version": "project-0"}
    assert train(client, bodies("hook", 1))["state"] == "succeeded"
    assert train(client, bodies("hook", 1))["state"] == "succeeded"
    assert train(client, bodies("hook", 2))["state"] == "succeeded"

    assert client.post("/setup", json=bodies("setup", 1)).json() == {"model_version": "p1-2"}
    assert client.post("/setup", json=bodies("setup", 2)).json() == {"model_version": "p2-1"}
    one = client.post("/predict", json=bodies("predict", 1)).json()
    two = client.post("/predict", json=bodies("predict", 2)).json()
    assert one["model_version"] == "p1-2"
    assert {r["model_version"] for r in one["results"]} == {"p1-2"}
    assert [r["score"] for r in one["results"]] == [2.0]
    assert two["model_version"] == "p2-1"
    assert [r["score"] for r in two["results"]] == [1.0]

    versions = client.get("/versions", params={"project": "1"}).json()
    assert versions["versions"] == ["project-0", "p1-1", "p1-2"]
    assert versions["current"] == "p1-2"
    assert all(v["project"] in (None, "1") for v in versions["history"])
    assert client.get("/versions", params={"project": "2"}).json()["current"] == "p2-1"
    assert client.get("/versions").json()["projects"] == {"1": "p1-2", "2": "p2-1"}
    refused = client.get("/versions", params={"project": "one"})
    assert refused.status_code == 422
    assert refused.json()["field"] == "project"

    data = backend_of(client).data_dir.path
    assert (data / "projects" / "1" / "versions" / "p1-2" / "state.json").is_file()
    assert (data / "projects" / "2" / "versions" / "p2-1" / "state.json").is_file()
    assert not (data / "versions").exists()  # nothing for the shared key


def test_eviction_keeps_every_answer_right(serve, bodies):
    client = serve(ProjectTally, max_loaded_models=2)
    for project in range(1, 6):
        for _ in range(project % 3):
            assert train(client, bodies("hook", project))["state"] == "succeeded"
    for _ in range(2):  # a second round: every instance built again from its version
        for project in range(1, 6):
            answer = client.post("/predict", json=bodies("predict", project)).json()
            fits = project % 3
            expected = f"p{project}-{fits}" if fits else "project-0"
            assert answer["model_version"] == expected, answer
            assert [r["score"] for r in answer["results"]] == [float(fits)]
    backend = backend_of(client)
    assert backend.instances.resident() == ["4", "5"]
    metrics = client.get("/metrics").text
    assert "relaxml_resident_models 2" in metrics
    assert "relaxml_model_evictions_total " in metrics
    assert 'relaxml_project_predictions_total{project="3"} 2' in metrics
    loads = next(
        float(line.split()[-1]) for line in metrics.splitlines()
        if line.startswith("relaxml_model_loads_total ")
    )  # fmt: skip
    assert loads >= 10  # five projects, built again in the second round


class SlowFirst(LabelStudioModel):
    """The second instance built (the first project's) waits for `release`."""

    per_project = True
    built = 0
    release = threading.Event()

    def __init__(self) -> None:
        type(self).built += 1
        if type(self).built == 2:
            assert type(self).release.wait(10)

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[], score=float(context.project.id or 0)) for _ in tasks]


def test_a_slow_build_holds_up_no_other_project(serve, bodies):
    client = serve(SlowFirst)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(client.post, "/predict", json=bodies("predict", 1))
        wait_for(lambda: SlowFirst.built == 2)
        started = time.monotonic()
        fast = client.post("/predict", json=bodies("predict", 2)).json()
        assert time.monotonic() - started < 5
        assert not slow.done()
        assert [r["score"] for r in fast["results"]] == [2.0]
        SlowFirst.release.set()
        assert [r["score"] for r in slow.result(10).json()["results"]] == [1.0]


def test_a_shared_model_keeps_one_instance_and_one_history(serve, bodies, tmp_path, monkeypatch):
    monkeypatch.setenv("RELAXML_TEST_FITS", str(tmp_path / "fits.txt"))
    client = serve(Tally)
    assert train(client, bodies("hook", 1))["state"] == "succeeded"
    assert client.post("/setup", json=bodies("setup", 2)).json() == {"model_version": "tally-1"}
    versions = client.get("/versions", params={"project": "2"}).json()
    assert versions["versions"] == ["tally-0", "tally-1"]
    assert "projects" not in versions
    assert backend_of(client).instances is None
    data = backend_of(client).data_dir.path
    assert (data / "versions" / "tally-1").is_dir()
    assert not (data / "projects").exists()


def test_versions_per_project_survive_a_restart_and_roll_back_from_the_cli(serve, bodies, tmp_path):
    data = str(tmp_path / "data")
    first_run = serve(ProjectTally, data_dir=data)
    for project in (1, 1, 2):
        assert train(first_run, bodies("hook", project))["state"] == "succeeded"
    first_run.__exit__(None, None, None)

    runner = CliRunner()
    listed = runner.invoke(main, ["versions", "list", "--data-dir", data, "--project", "1"])
    assert listed.exit_code == 0, listed.output
    lines = [line.split() for line in listed.output.splitlines()]
    assert [line[0] for line in lines] == ["project-0", "p1-1", "*"]
    assert lines[2][1] == "p1-2"
    shared = runner.invoke(main, ["versions", "list", "--data-dir", data])
    assert shared.output.splitlines()[-1].endswith("(--project): 1, 2")
    used = runner.invoke(main, ["versions", "use", "p1-1", "--data-dir", data, "--project", "1"])
    assert used.exit_code == 0, used.output
    unknown = runner.invoke(main, ["versions", "use", "p1-2", "--data-dir", data, "--project", "2"])
    assert unknown.exit_code == 2
    assert "known: project-0, p2-1" in unknown.output

    again = serve(ProjectTally, data_dir=data)
    one = again.post("/predict", json=bodies("predict", 1)).json()
    assert one["model_version"] == "p1-1"
    assert [r["score"] for r in one["results"]] == [1.0]
    assert again.post("/setup", json=bodies("setup", 2)).json() == {"model_version": "p2-1"}
    assert again.post("/setup", json=bodies("setup", 3)).json() == {"model_version": "project-0"}


def test_a_background_job_carries_its_projects_version(serve, bodies):
    client = serve(ProjectTally, delivery="background")
    assert train(client, bodies("hook", 1))["state"] == "succeeded"
    one = client.post("/predict", json=bodies("predict", 1)).json()
    two = client.post("/predict", json=bodies("predict", 2)).json()
    assert (one["model_version"], two["model_version"]) == ("p1-1", "project-0")
    job = client.get(f"/jobs/{one['job']}").json()
    assert job["model_version"] == "p1-1", job


def test_a_data_directory_from_before_keeps_its_versions(tmp_path):
    database = tmp_path / "relaxml.sqlite3"
    with sqlite3.connect(database) as db:  # the tables as they were before projects had theirs
        db.executescript(
            "CREATE TABLE versions (version TEXT PRIMARY KEY, created_at REAL NOT NULL,"
            " run_id INTEGER, project TEXT, annotations INTEGER, path TEXT);"
            "CREATE TABLE current_version (id INTEGER PRIMARY KEY CHECK (id = 1),"
            " version TEXT NOT NULL, changed_at REAL NOT NULL);"
            "INSERT INTO versions VALUES ('v1', 1.0, 1, '3', 5, NULL);"
            "INSERT INTO current_version VALUES (1, 'v1', 1.0);"
        )
    db.close()
    store = VersionStore(database)
    try:
        assert store.current() == "v1"
        assert [r.version for r in store.history()] == ["v1"]
        three = store.for_project("3")
        assert three.current() is None
        three.record("v1", project="3")  # the same name, another project: both kept
        assert three.current() == "v1"
        assert [r.project for r in store.history()] == ["3"]
        assert store.projects() == ["3"]
        assert store.for_project("*") is store
    finally:
        store.close()


class BreaksOnce(LabelStudioModel):
    """The first project instance's `__init__` raises; later ones build."""

    per_project = True
    built = 0

    def __init__(self) -> None:
        type(self).built += 1
        if type(self).built == 2:
            raise RuntimeError("weights missing")

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[], score=1.0) for _ in tasks]


def test_a_failed_build_is_a_json_500_and_the_next_call_builds_again(serve, bodies):
    client = serve(BreaksOnce)
    failed = client.post("/predict", json=bodies("predict", 1))
    assert failed.status_code == 500
    assert failed.json()["error"] == "model_error"
    assert "weights missing" in failed.json()["detail"]
    assert "Traceback" not in failed.text
    again = client.post("/predict", json=bodies("predict", 1))
    assert again.status_code == 200
    assert [r["score"] for r in again.json()["results"]] == [1.0]
    assert BreaksOnce.built == 3


class Remembers(LabelStudioModel):
    """Each instance computes its memoized value once; the value names its project."""

    per_project = True

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        value = context.memo.get("embedding", lambda: float(context.project.id or 0))
        return [Prediction(result=[], score=value) for _ in tasks]


def test_each_project_model_has_its_own_memo(serve, bodies):
    client = serve(Remembers, delivery="inline")
    for project in (1, 2, 1, 2):
        answer = client.post("/predict", json=bodies("predict", project)).json()
        assert [r["score"] for r in answer["results"]] == [float(project)]
