"""The data directory: one model per directory, a clear error when it is corrupt or unwritable,
trained state that survives restarts and reaches other workers without save/load, and versions
that are never overwritten."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from starlette.testclient import TestClient

from relaxml import Context, LabelStudioModel, Prediction, Task, TrainingEvent, cli, create_app
from relaxml._datadir.layout import IDENTITY_FILE, DataDirError
from relaxml._datadir.sqlite import FILENAME

from .conftest import first, wait_for
from .support.models import Echo, Trainable, choice
from .test_workers import ROOT, free_port

NER = """\
from relaxml import LabelStudioModel


class CapsNER(LabelStudioModel):
    def predict(self, tasks, context):
        return [None for _ in tasks]
"""

TOPIC = NER.replace("CapsNER", "TopicClassifier")


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with two model files, as in the issue; nothing is served."""
    (tmp_path / "ner.py").write_text(NER)
    (tmp_path / "topic.py").write_text(TOPIC)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", sys.path[:])
    monkeypatch.setattr(cli.uvicorn, "run", lambda *args, **kwargs: None)
    yield tmp_path
    for name in ("ner", "topic"):
        sys.modules.pop(name, None)


def serve_cli(*args: str) -> Any:
    return CliRunner().invoke(cli.main, ["serve", *args], prog_name="relaxml")


# Item 13: two models in one folder do not share a data directory


def test_a_second_model_on_the_same_data_directory_is_a_usage_error(folder: Path):
    assert serve_cli("ner.py:CapsNER").exit_code == 0
    recorded = json.loads((folder / "relaxml-data" / IDENTITY_FILE).read_text())
    assert recorded == {"model": "ner:CapsNER"}

    result = serve_cli("topic.py:TopicClassifier")

    assert result.exit_code == 2
    assert "Traceback" not in result.output
    error = result.output.strip().splitlines()[-1]
    assert str(folder / "relaxml-data") in error
    assert "belongs to model ner:CapsNER, not topic:TopicClassifier" in error
    assert "--data-dir" in error
    assert "RELAXML_DATA_DIR" in error
    # what the message says to do works; the first model still starts on its own directory
    assert serve_cli("topic.py:TopicClassifier", "--data-dir", "topic-data").exit_code == 0
    assert serve_cli("ner.py:CapsNER").exit_code == 0


def test_a_second_model_on_the_same_data_directory_is_refused_by_create_app(serve, tmp_path):
    data_dir = str(tmp_path / "shared")
    serve(Echo, data_dir=data_dir)

    app = create_app(Trainable, data_dir=data_dir)
    with (
        pytest.raises(DataDirError, match=r"belongs to model tests\.support\.models:Echo"),
        TestClient(app),
    ):
        pass


def test_startup_logs_the_absolute_data_directory_and_whether_it_is_new(
    serve, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="relaxml"):
        serve(Echo, data_dir="state")
        serve(Echo, data_dir="state")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("data dir")]
    assert lines == [
        f"data directory {tmp_path / 'state'} (new)",
        f"data directory {tmp_path / 'state'} (existing)",
    ]


def test_a_directory_from_before_the_check_adopts_the_first_model(serve, tmp_path):
    data_dir = tmp_path / "old"
    serve(Echo, data_dir=str(data_dir))
    (data_dir / IDENTITY_FILE).unlink()  # as an older relaxml left it
    serve(Trainable, data_dir=str(data_dir))
    assert (
        json.loads((data_dir / IDENTITY_FILE).read_text())["model"]
        == "tests.support.models:Trainable"
    )


# A corrupt or unwritable data directory: one line naming the path


def test_a_corrupt_database_is_a_one_line_error_naming_it(folder: Path):
    data_dir = folder / "relaxml-data"
    data_dir.mkdir()
    (data_dir / FILENAME).write_bytes(b"this is not a database, just some bytes " * 100)

    result = serve_cli("ner.py:CapsNER")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert str(data_dir / FILENAME) in line
    assert "cannot be read" in line

    app = create_app(Echo, data_dir=str(data_dir))
    with pytest.raises(DataDirError, match=re.escape(str(data_dir / FILENAME))), TestClient(app):
        pass


def test_an_unwritable_data_directory_is_a_one_line_error_naming_it(folder: Path):
    (folder / "plain-file").write_text("not a directory")
    data_dir = folder / "plain-file" / "data"

    result = serve_cli("ner.py:CapsNER", "--data-dir", str(data_dir))

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    [line] = result.output.strip().splitlines()
    assert f"data directory {data_dir} is not a writable directory" in line

    app = create_app(Echo, data_dir=str(data_dir))
    with pytest.raises(DataDirError, match="is not a writable directory"), TestClient(app):
        pass


# Item 14: a model with fit but no save/load keeps its training (pickle)


class Memorizer(LabelStudioModel):
    """Learns a number in fit; has no save or load."""

    model_version = "mem-0"

    def __init__(self) -> None:
        self.seen = 0

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[choice(t, label=str(self.seen))]) for t in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        self.seen += 1
        return f"mem-{self.seen}"


class Locked(Memorizer):
    """Holds a lock, which pickle refuses."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()


def label_of(client: Any) -> str:
    body = {"tasks": [{"id": 1, "data": {}}]}
    answer = client.post("/predict", json=body).json()
    return str(answer["results"][0]["result"][0]["value"]["choices"][0])


def start_training(client: Any, captured: list[dict[str, Any]]) -> None:
    hook = first(captured, "/webhook", action="START_TRAINING")
    assert client.post("/webhook", json=hook).json()["status"] == "accepted"


def test_fit_without_save_and_load_reaches_other_workers_and_restarts(serve, captured, tmp_path):
    data_dir = str(tmp_path / "data")
    leader = serve(Memorizer, data_dir=data_dir, version_poll=0.05)
    worker = serve(Memorizer, data_dir=data_dir, version_poll=0.05)  # not the leader
    assert label_of(worker) == "0"

    start_training(leader, captured)

    wait_for(lambda: label_of(leader) == "1")
    wait_for(lambda: label_of(worker) == "1")  # swapped to the pickled state
    assert worker.get("/health").json()["model_version"] == "mem-1"
    assert (tmp_path / "data" / "versions" / "mem-1" / "state.pickle").is_file()

    restarted = serve(Memorizer, data_dir=data_dir)
    assert restarted.get("/health").json()["model_version"] == "mem-1"
    assert label_of(restarted) == "1"


def test_an_attribute_that_cannot_be_pickled_fails_the_run_with_its_name(serve, captured):
    client = serve(Locked)
    start_training(client, captured)

    def failed_run() -> dict[str, Any] | None:
        runs = [r for r in client.get("/jobs").json()["training"] if r.get("id")]
        return runs[0] if runs and runs[0]["state"] == "failed" else None

    run = wait_for(failed_run)
    assert "Locked.lock (lock) cannot be pickled" in run["error"]
    assert "implement save() and load()" in run["error"]
    # serving goes on, with the version it had
    assert client.get("/health").json()["model_version"] == "mem-0"
    assert label_of(client) == "1"  # this process's instance trained; nothing was recorded
    assert client.get("/versions").json()["versions"] == ["mem-0"]


# Item 17: a version that already exists is never overwritten


class SameVersion(LabelStudioModel):
    """Returns the same version from every fit; saves how many fits it ran."""

    model_version = "same-0"

    def __init__(self) -> None:
        self.fits = 0

    def predict(self, tasks: list[Task], context: Context) -> list[None]:
        return [None for _ in tasks]

    def fit(self, event: TrainingEvent) -> str | None:
        self.fits += 1
        return "same-1"

    def save(self, path: Path) -> None:
        (path / "fits.txt").write_text(str(self.fits))

    def load(self, path: Path) -> None:
        self.fits = int((path / "fits.txt").read_text())


def test_a_fit_that_returns_an_existing_version_gets_a_suffix(serve, captured, tmp_path, caplog):
    client = serve(SameVersion, data_dir=str(tmp_path / "data"))
    versions = tmp_path / "data" / "versions"
    with caplog.at_level(logging.WARNING, logger="relaxml"):
        start_training(client, captured)
        wait_for(lambda: client.get("/health").json()["model_version"] == "same-1")
        start_training(client, captured)
        wait_for(lambda: client.get("/health").json()["model_version"] == "same-1-2")

    assert (versions / "same-1" / "fits.txt").read_text() == "1"  # untouched
    assert (versions / "same-1-2" / "fits.txt").read_text() == "2"
    listed = client.get("/versions").json()["versions"]
    assert listed == ["same-0", "same-1", "same-1-2"]
    assert any(
        "returned version same-1, which already exists; recording the new model as same-1-2"
        in r.getMessage()
        for r in caplog.records
    )


def test_two_real_workers_both_serve_a_pickled_version(tmp_path, captured):
    port = free_port()
    log_path = tmp_path / "serve.log"
    argv = [sys.executable, "-m", "relaxml", "serve", "tests/support/worker_model.py:Memo"]
    argv += ["--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "RELAXML_VERSION_POLL": "0.2"}
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        wait_for(lambda: _get(url + "/health") is not None, timeout=30)
        hook = first(captured, "/webhook", action="START_TRAINING")
        assert requests.post(url + "/webhook", json=hook, timeout=5).json()["status"] == "accepted"

        def served() -> set[tuple[int, str, float]]:
            seen = set()
            for _ in range(30):  # a new connection each time: both workers answer
                health = requests.get(url + "/health", timeout=2).json()
                body = {"tasks": [{"id": 1, "data": {}}]}
                score = requests.post(url + "/predict", json=body, timeout=5).json()
                seen.add((health["worker"], health["model_version"], score["results"][0]["score"]))
            return seen

        def both_trained() -> bool:
            seen = served()
            workers = {worker for worker, _, _ in seen}
            versions = {(version, score) for _, version, score in seen}
            return len(workers) == 2 and versions == {("memo-1", 1.0)}

        wait_for(both_trained, timeout=30, interval=0.3)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert (tmp_path / "data" / "versions" / "memo-1" / "state.pickle").is_file()


def _get(url: str) -> Any:
    try:
        return requests.get(url, timeout=1).json()
    except requests.RequestException:
        return None
