"""No zombie: background loops survive errors, a loop that cannot go on makes /health DOWN (and
`relaxml serve` exit for a restart), and bad settings or class attributes are refused at start."""

from __future__ import annotations

import logging
import math
import sqlite3
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from relaxml import LabelStudioModel, Settings, create_app
from relaxml._supervise import FATAL_EXIT_CODE, GuardedGroup
from relaxml.cli import main
from relaxml.projects import Project

from .conftest import backend_of, first, wait_for
from .support.models import Echo, Trainable
from .test_cli import free_port, server


def start_hook(captured: list[dict[str, Any]]) -> dict[str, Any]:
    return first(captured, "/webhook", action="START_TRAINING")


def quick_retries(client: Any) -> Any:
    """The client's supervisor, retrying at once (the defaults back off from 1 s to 60 s)."""
    supervisor = backend_of(client).supervisor
    supervisor.backoff = 0.01
    return supervisor


def runs(client: Any) -> list[dict[str, Any]]:
    return [run for run in client.get("/jobs").json()["training"] if run.get("id")]


# Item 5, first case: a stored hostname without a scheme, then a training event


def test_training_survives_a_stored_project_hostname_without_a_scheme(serve, captured):
    client = serve(Trainable)
    backend = backend_of(client)
    hook = start_hook(captured)
    project_id = hook["project"]["id"]
    # LabelStudioClient raises ValueError for such a hostname: the trainer used to die here,
    # and every later run with it. Through /setup where it is accepted; else as a project
    # recorded before /setup refused such hostnames.
    setup = {"project": f"{project_id}.1700000000", "schema": "", "hostname": "ls.example:8080"}
    if client.post("/setup", json=setup).status_code != 200:
        backend.projects._projects["x"] = Project(
            uid="x", id=project_id, hostname="ls.example:8080"
        )
    assert any(p.hostname == "ls.example:8080" for p in backend.projects.all())

    for _ in range(2):
        assert client.post("/webhook", json=hook).json()["status"] == "accepted"
        time.sleep(0.6)
    wait_for(lambda: len(backend.model.events) == 2)
    assert backend.model.events[0].control.client is None  # trained without a client, as documented
    wait_for(lambda: [r["state"] for r in runs(client)] == ["succeeded", "succeeded"])
    assert client.get("/health").json()["status"] == "UP"


def test_an_error_outside_fit_fails_that_run_only(serve, captured):
    client = serve(Trainable)
    backend = backend_of(client)
    original = backend.trainer._control_for
    calls: list[int] = []

    def broken_once(event: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("lookup failed")
        return original(event)

    backend.trainer._control_for = broken_once
    client.post("/webhook", json=start_hook(captured))
    wait_for(lambda: [r["state"] for r in runs(client)] == ["failed"])
    assert "RuntimeError: lookup failed" in runs(client)[0]["error"]

    client.post("/webhook", json=start_hook(captured))
    wait_for(lambda: len(backend.model.events) == 1)
    wait_for(lambda: runs(client)[0]["state"] == "succeeded")
    assert client.get("/health").json()["status"] == "UP"


def test_a_loop_that_raises_logs_backs_off_and_goes_on(serve, captured, caplog):
    client = serve(Trainable)
    backend = backend_of(client)
    quick_retries(client)
    store = backend.training_store
    original = store.ready_project
    failures = iter([RuntimeError("disk hiccup"), RuntimeError("disk hiccup")])

    def flaky(*args: Any) -> Any:
        error = next(failures, None)
        if error is not None:
            raise error
        return original(*args)

    store.ready_project = flaky
    with caplog.at_level(logging.ERROR, logger="relaxml"):
        client.post("/webhook", json=start_hook(captured))
        wait_for(lambda: len(backend.model.events) == 1)
    assert any("training failed; going on" in r.getMessage() for r in caplog.records)
    assert client.get("/health").json()["status"] == "UP"


# Item 5, second and third cases: refused at startup, naming the setting / attribute


def test_version_poll_nan_is_refused_at_startup(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match=r"version_poll \(RELAXML_VERSION_POLL\) .* nan"):
        Settings.from_env({"RELAXML_VERSION_POLL": "nan"})
    with pytest.raises(ValueError, match="version_poll"):
        Settings(version_poll=math.inf)

    monkeypatch.setenv("RELAXML_VERSION_POLL", "nan")
    result = CliRunner().invoke(
        main, ["serve", "tests.support.models:Echo", "--data-dir", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "RELAXML_VERSION_POLL" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"RELAXML_MAX_QUEUE": "-5"}, "max_queue must be 0 or more"),
        ({"RELAXML_MEDIA_MAX_BYTES": "0"}, "media_max_bytes must be at least 1"),
        ({"RELAXML_DELIVERY_BATCH": "1.5"}, "RELAXML_DELIVERY_BATCH: expected an integer"),
        ({"LABEL_STUDIO_URL": "ls.example:8080"}, r"LABEL_STUDIO_URL\) must be an http"),
        ({"LABEL_STUDIO_URL": "http://"}, "with a host"),
        ({"RELAXML_DELIVERY": "later"}, "delivery must be 'inline'"),
        ({"RELAXML_EXIT_ON_FATAL": "maybe"}, "RELAXML_EXIT_ON_FATAL: expected 1/0"),
    ],
)
def test_every_setting_is_validated_at_startup(env, words):
    with pytest.raises(ValueError, match=words):
        Settings.from_env(env)


class NegativeTimeout(Echo):
    batch_timeout = -1


class NaNTimeout(Echo):
    batch_timeout = float("nan")


class ZeroBatch(Echo):
    max_batch_size = 0


class FloatBatch(Echo):
    max_batch_size = 2.5  # type: ignore[assignment]


class Sometimes(Echo):
    delivery = "sometimes"


class Blank(Echo):
    model_version = "   "


@pytest.mark.parametrize(
    ("model", "attribute"),
    [
        (NegativeTimeout, "NegativeTimeout.batch_timeout"),
        (NaNTimeout, "NaNTimeout.batch_timeout"),
        (ZeroBatch, "ZeroBatch.max_batch_size"),
        (FloatBatch, "FloatBatch.max_batch_size"),
        (Sometimes, "Sometimes.delivery"),
        (Blank, "Blank.model_version"),
    ],
)
def test_bad_class_attributes_are_refused_before_serving(model, attribute, tmp_path):
    with pytest.raises((TypeError, ValueError), match=attribute):
        create_app(model, data_dir=str(tmp_path))

    target = f"tests.test_resilience:{model.__name__}"
    result = CliRunner().invoke(main, ["serve", target, "--data-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert attribute in result.output
    assert "Traceback" not in result.output


def test_micro_batching_keeps_working_after_a_flush_task_fails(serve):
    class Batched(Echo):
        batch_timeout = 0.05
        max_batch_size = 8

    client = serve(Batched)
    backend = backend_of(client)
    assert backend.batcher is not None

    async def broken() -> None:
        raise RuntimeError("a flush task failed")

    # the guard keeps the failure from cancelling the app's task group (and every loop in it)
    client.portal.call(lambda: backend.batcher._task_group.start_soon(broken))
    body = {"tasks": [{"id": 1, "data": {}}]}
    assert client.post("/predict", json=body).status_code == 200
    assert client.get("/health").json()["status"] == "UP"


# A loop that cannot go on: /health DOWN with a reason; `relaxml serve` exits for a restart


def test_a_corrupt_database_at_run_time_makes_health_down(serve):
    client = serve(Echo, version_poll=0.05)

    def corrupt() -> str:
        raise sqlite3.DatabaseError("database disk image is malformed")

    backend_of(client).versions.current = corrupt
    wait_for(lambda: client.get("/health").status_code == 503)
    health = client.get("/health").json()
    assert health["status"] == "DOWN"
    assert "version watch" in health["reason"]
    assert "malformed" in health["reason"]
    # serving inline goes on meanwhile
    assert client.post("/predict", json={"tasks": [{"id": 1, "data": {}}]}).status_code == 200


def test_the_same_error_five_times_in_a_row_makes_health_down(serve):
    client = serve(Echo, version_poll=0.01)
    quick_retries(client)
    calls: list[int] = []

    def broken() -> str:
        calls.append(1)
        raise RuntimeError("always the same")

    backend_of(client).versions.current = broken
    wait_for(lambda: client.get("/health").status_code == 503)
    assert "failed 5 times in a row" in client.get("/health").json()["reason"]
    assert len(calls) == 5


DOOMED = """\
import sqlite3

from relaxml import LabelStudioModel
from relaxml._training.versions import VersionStore

calls = []
_current = VersionStore.current


def current(self):
    calls.append(1)
    if len(calls) > 2:  # startup reads it; then the database "breaks"
        raise sqlite3.DatabaseError("database disk image is malformed")
    return _current(self)


VersionStore.current = current


class Doomed(LabelStudioModel):
    def predict(self, tasks, context):
        return [None for _ in tasks]
"""


@pytest.mark.skipif(sys.platform == "win32", reason="signals")
def test_relaxml_serve_exits_non_zero_when_background_work_cannot_go_on(tmp_path: Path):
    (tmp_path / "doomed.py").write_text(DOOMED)
    port = free_port()
    args = ["doomed.py:Doomed", "--host", "127.0.0.1", "--port", str(port)]
    with server(tmp_path, *args, "--data-dir", str(tmp_path / "data")) as (process, log_path):
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    seen.append(r.status)
            except urllib.error.HTTPError as error:
                seen.append(error.code)
                error.close()
            except OSError:
                pass
            time.sleep(0.05)
        assert process.wait(timeout=30) == FATAL_EXIT_CODE, log_path.read_text()
    log = log_path.read_text()
    assert "background work cannot go on: version watch" in log
    assert "Waiting for application shutdown." in log  # a graceful shutdown first
    assert 200 in seen


class Fine(LabelStudioModel):
    def predict(self, tasks: list[Any], context: Any) -> list[None]:
        return [None for _ in tasks]


def test_create_app_does_not_exit_by_default(serve):
    client = serve(Fine)
    assert backend_of(client).settings.exit_on_fatal is False
    backend_of(client).supervisor.fail("test: stop")
    assert backend_of(client).exit_code is None  # the test process is still here
    assert client.get("/health").json() == {**client.get("/health").json(), "status": "DOWN"}


def test_a_background_task_that_ends_makes_health_down(serve):
    client = serve(Fine)
    backend = backend_of(client)

    async def gone() -> None:
        raise RuntimeError("a loop ended")

    group = GuardedGroup(backend._task_group, backend.supervisor, "background", forever=True)
    client.portal.call(lambda: group.start_soon(gone))
    wait_for(lambda: client.get("/health").status_code == 503)
    assert "stopped" in client.get("/health").json()["reason"]
