"""`relaxml serve --engine ray`: two Serve replicas and one coordinator, as Label Studio sees them.

One command serves `Where` (its scores are process ids) for the whole module, with Basic Auth
and a fake Label Studio; each test looks at it from outside, over HTTP, as Label Studio does.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from starlette.testclient import TestClient

from relaxml import create_app
from relaxml.testing import FakeLabelStudio

from ..conftest import wait_for
from ..support.ray_model import Where
from ..support.rayserve import RayServe

USER, PASSWORD = "ls", "ray-serve-s3cret"
AUTH = (USER, PASSWORD)
PROJECT = 7


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLabelStudio]:
    """A Label Studio that makes the tasks it is sent predictions for on first sight."""
    with FakeLabelStudio(accept_unknown_tasks=True) as server:
        server.add_project(id=PROJECT)
        yield server


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, fake: FakeLabelStudio) -> Iterator[RayServe]:
    """`Where` on two replicas with Basic Auth, for every test of this module."""
    from .conftest import require_ray

    require_ray()
    base = tmp_path_factory.mktemp("rayserve")
    env = {
        **fake.env,
        "RELAXML_BASIC_AUTH_USER": USER,
        "RELAXML_BASIC_AUTH_PASS": PASSWORD,
        "RELAXML_TEST_FITS": str(base / "fits"),
        "RELAXML_VERSION_POLL": "0.2",
    }
    options = ["--replicas", "2", "--num-cpus", "0.25", "--data-dir", str(base / "data")]
    server = RayServe("tests.support.ray_model:Where", options, env, base / "serve.log")
    try:
        server.wait_serving(auth=AUTH)
        yield server
    finally:
        status, left = server.stop()
        assert left == {}, left
        assert status == 0, server.log()[-3000:]


def get(served: RayServe, path: str, **kwargs: Any) -> requests.Response:
    return requests.get(served.url + path, auth=AUTH, timeout=10, **kwargs)


def post(served: RayServe, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", AUTH)
    return requests.post(served.url + path, timeout=10, **kwargs)


def one_task() -> dict[str, Any]:
    return {"tasks": [{"id": 1, "data": {"text": "hi"}}]}


def replica_pids(served: RayServe) -> set[int]:
    return {pid for pid, line in served.processes().items() if "ServeReplica" in line}


def coordinator_pid(served: RayServe) -> int:
    (pid,) = [pid for pid, line in served.processes().items() if "ray::Coordinator" in line]
    return pid


def test_two_replicas_answer_every_route_and_both_serve(served: RayServe) -> None:
    workers: set[str] = set()
    scorers: set[int] = set()
    for _ in range(40):
        health = get(served, "/health").json()
        assert health["status"] == "UP"
        assert health["model_class"] == "Where"
        workers.add(health["worker"])
        answer = post(served, "/predict", json=one_task())
        assert answer.status_code == 200
        scorers.add(int(answer.json()["results"][0]["score"]))
        if len(workers) == 2 and len(scorers) == 2:
            break
    assert len(workers) == 2, workers  # two Serve replica ids
    assert all(isinstance(w, str) and w != "coordinator" for w in workers)
    assert scorers == replica_pids(served)  # each replica predicts in its own process
    setup = post(served, "/setup", json={"project": f"{PROJECT}.1", "schema": "<View/>"})
    assert setup.status_code == 200
    assert setup.json()["model_version"].startswith("where-")
    assert get(served, "/ready").status_code == 200
    assert "relaxml_requests_total" in get(served, "/metrics").text


BAD_REQUESTS = [
    ("POST", "/predict", b"{bad", AUTH),
    ("POST", "/predict", b"{}", AUTH),
    ("POST", "/predict", b'{"tasks": [{"id": "1", "data": {}}]}', AUTH),
    ("POST", "/setup", b"{}", AUTH),
    ("POST", "/webhook", b"null", AUTH),
    ("GET", "/nope", None, AUTH),
    ("GET", "/predict", None, AUTH),
    ("GET", "/health", None, None),  # no credentials
    ("POST", "/predict", b"{}", (USER, "wrong")),
    ("POST", "/train", b'{"annotations": 3}', AUTH),
]


def test_bad_input_gets_the_same_json_answer_as_local(served: RayServe, tmp_path: Path) -> None:
    local = create_app(
        Where, basic_auth_user=USER, basic_auth_pass=PASSWORD, data_dir=str(tmp_path / "data")
    )
    with TestClient(local) as client:
        for method, path, body, auth in BAD_REQUESTS:
            want = client.request(method, path, content=body, auth=auth)
            got = requests.request(method, served.url + path, data=body, auth=auth, timeout=10)
            assert 400 <= got.status_code < 500, (method, path, got.text)
            assert (got.status_code, got.json()) == (want.status_code, want.json()), (method, path)
            for header in ("content-type", "www-authenticate"):
                assert got.headers.get(header) == want.headers.get(header), (path, header)


def test_a_bulk_predict_is_delivered_by_the_coordinator(
    served: RayServe, fake: FakeLabelStudio
) -> None:
    setup = {"project": f"{PROJECT}.1", "hostname": fake.url, "access_token": fake.api_key}
    assert post(served, "/setup", json=setup).status_code == 200
    tasks = [{"id": i, "data": {"text": str(i)}, "project": PROJECT} for i in range(1, 31)]
    answer = post(served, "/predict", json={"project": f"{PROJECT}.1", "tasks": tasks}).json()
    assert answer["queued"] == 30
    assert answer["results"] == []

    def done() -> bool:  # any replica reports the job: its state is the data directory's
        return bool(get(served, f"/jobs/{answer['job']}").json()["state"] == "done")

    wait_for(done, timeout=30, interval=0.2)
    assert fake.predictions_by_task() == dict.fromkeys(range(1, 31), 1)
    scorers = {int(p["score"]) for p in fake.predictions}
    assert scorers == {coordinator_pid(served)}  # predicted there, not in a replica


def test_train_runs_once_on_the_coordinator_and_every_replica_serves_it(
    served: RayServe, tmp_path: Path
) -> None:
    fits = Path(served.log_path.parent / "fits")
    answer = post(served, "/train", json={"project": PROJECT})
    assert answer.json()["status"] == "accepted"

    def every_replica_serves(version: str) -> bool:
        seen = {}
        for _ in range(20):
            health = get(served, "/health").json()
            seen[health["worker"]] = health["model_version"]
        return len(seen) == 2 and set(seen.values()) == {version}

    wait_for(lambda: every_replica_serves("where-1"), timeout=30, interval=0.2)
    assert fits.read_text().split() == [str(coordinator_pid(served))]


def test_a_killed_coordinator_is_restarted_and_training_goes_on(served: RayServe) -> None:
    fits = Path(served.log_path.parent / "fits")
    before = coordinator_pid(served)
    runs = len(fits.read_text().split()) if fits.exists() else 0
    os.kill(before, signal.SIGKILL)
    # Label Studio sees nothing: the replicas answer and queue meanwhile.
    assert post(served, "/predict", json=one_task()).status_code == 200
    assert post(served, "/train", json={"project": PROJECT}).json()["status"] == "accepted"
    wait_for(lambda: len(fits.read_text().split()) == runs + 1, timeout=60, interval=0.3)
    after = coordinator_pid(served)
    assert after != before
    assert fits.read_text().split()[-1] == str(after)


def test_a_killed_replica_is_replaced_and_serving_goes_on(served: RayServe) -> None:
    first = replica_pids(served)
    assert len(first) == 2
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    failures = 0
    start = time.monotonic()
    while replica_pids(served) - first == set():  # until Serve has started its replacement
        assert time.monotonic() - start < 60, "the killed replica was not replaced"
        if post(served, "/predict", json=one_task()).status_code != 200:
            failures += 1
        time.sleep(0.1)
    now = replica_pids(served)
    assert victim not in now
    assert len(now) == 2
    wait_for(lambda: get(served, "/ready").status_code == 200, timeout=30)
    scorers: set[int] = set()
    for _ in range(30):
        answer = post(served, "/predict", json=one_task())
        assert answer.status_code == 200
        scorers.add(int(answer.json()["results"][0]["score"]))
    assert victim not in scorers
    print(f"requests failed while the replica was replaced: {failures}")


def test_no_secret_reaches_a_log(served: RayServe) -> None:
    assert PASSWORD not in served.log()
    for path in Path(served.ray_tmpdir).rglob("*"):
        if path.is_file() and path.suffix in (".log", ".out", ".err"):
            assert PASSWORD.encode() not in path.read_bytes(), path.name
