"""Devices per worker, `warmup` and `GET /ready`, with real worker processes where it matters.

Nothing touches a GPU: devices are strings, and `torch` is a stand-in that records which
processes import it (tests/support/fake_torch).
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from relaxml.cli import main
from relaxml.settings import Settings

from .conftest import backend_of, wait_for
from .support.device_model import DeviceProbe, VersionedProbe
from .support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
FAKE_TORCH = ROOT / "tests" / "support" / "fake_torch"
TARGET = "tests/support/device_model.py:DeviceProbe"


def reports(folder: Path) -> dict[int, dict[str, str]]:
    """What each worker's warmup wrote: process id → the devices it saw."""
    return {int(p.stem): json.loads(p.read_text()) for p in folder.glob("*.json")}


class Served:
    """A `relaxml serve` process of the probe model and its log."""

    def __init__(self, tmp_path: Path, argv: list[str], env: dict[str, str]) -> None:
        self.log_path = tmp_path / "serve.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        argv = [sys.executable, "-m", "relaxml", "serve", TARGET, *argv]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--data-dir", str(tmp_path / "data")]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env={**os.environ, **env}, stdout=log, stderr=log
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def get(self, path: str) -> requests.Response | None:
        try:
            return requests.get(self.url + path, timeout=2)
        except requests.ConnectionError:
            return None

    def wait_for(self, path: str, status: int, seconds: float = 60) -> requests.Response:
        deadline = time.monotonic() + seconds
        while True:
            answer = self.get(path)
            if answer is not None and answer.status_code == status:
                return answer
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(30)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def run(argv: list[str], env: dict[str, str]) -> Served:
        served = Served(tmp_path, argv, env)
        started.append(served)
        return served

    yield run
    for served in started:
        served.stop()


def test_two_workers_get_the_two_devices_and_ready_waits_for_the_slow_one(tmp_path, start):
    out, gate = tmp_path / "devices", tmp_path / "gate"
    out.mkdir()
    env = {
        "RELAXML_TEST_DEVICES": str(out),
        "RELAXML_TEST_SLOW_DEVICE": "cuda:1",
        "RELAXML_TEST_GATE": str(gate),
    }
    served = start(["--workers", "2", "--devices", "cuda:0,cuda:1"], env)

    # The cuda:0 worker answers; the cuda:1 worker is still warming up.
    health = served.wait_for("/health", 200).json()
    assert health["device"] == "cuda:0"
    starting = served.wait_for("/ready", 503).json()
    assert starting == {"status": "STARTING", "workers": 2, "ready": 1}
    time.sleep(0.5)
    assert served.get("/ready").status_code == 503  # type: ignore[union-attr]
    assert list(reports(out).values()) == [{"init": "cuda:0", "device": "cuda:0"}]

    gate.touch()
    ready = served.wait_for("/ready", 200).json()
    assert ready == {"status": "READY", "workers": 2, "ready": 2}
    seen = reports(out)
    assert len(seen) == 2  # two worker processes, not the parent
    assert served.process.pid not in seen
    assert sorted(r["device"] for r in seen.values()) == ["cuda:0", "cuda:1"]
    assert all(r["init"] == r["device"] for r in seen.values())  # set before __init__ ran
    devices = set()
    deadline = time.monotonic() + 20
    while devices != {"cuda:0", "cuda:1"}:  # a new connection each time: both answer
        devices.add(served.wait_for("/health", 200).json()["device"])
        assert time.monotonic() < deadline, devices

    # A worker killed outright is replaced by one on its device (it frees its slot).
    (killed,) = [pid for pid, r in seen.items() if r["device"] == "cuda:1"]
    os.kill(killed, signal.SIGKILL)  # a worker process of the server this test started
    deadline = time.monotonic() + 60
    while len(reports(out)) < 3:
        assert time.monotonic() < deadline, served.log()
        time.sleep(0.05)
    (replacement,) = set(reports(out)) - set(seen)
    assert reports(out)[replacement] == {"init": "cuda:1", "device": "cuda:1"}
    served.wait_for("/ready", 200)


def test_without_devices_workers_ask_torch_and_the_parent_never_imports_it(tmp_path, start):
    out, imports = tmp_path / "devices", tmp_path / "torch-imports"
    out.mkdir()
    env = {
        "RELAXML_TEST_DEVICES": str(out),
        "RELAXML_TEST_TORCH_IMPORTS": str(imports),
        "PYTHONPATH": os.pathsep.join([str(FAKE_TORCH), os.environ.get("PYTHONPATH", "")]),
    }
    served = start(["--workers", "2"], env)
    served.wait_for("/ready", 200)
    seen = reports(out)
    assert sorted(r["device"] for r in seen.values()) == ["cuda", "cuda"]
    importers = [int(line) for line in imports.read_text().split()]
    assert sorted(importers) == sorted(seen)  # each worker imported torch, once
    assert served.process.pid not in importers  # the parent did not


@pytest.mark.parametrize("argv", [[], ["--workers", "2"]], ids=["one process", "two workers"])
def test_a_failing_warmup_is_a_failing_startup(tmp_path, start, argv):
    served = start(argv, {"RELAXML_TEST_WARMUP_FAIL": "1"})
    assert served.process.wait(60) == 3  # uvicorn's "startup failed", with workers too
    log = served.log()
    assert "DeviceProbe.warmup() failed: RuntimeError: CUDA out of memory" in log
    assert served.get("/health") is None
    if argv:
        assert "Error: a worker failed to start: RuntimeError: CUDA out of memory" in log


def test_a_worker_whose_init_raises_is_a_failing_startup_too(tmp_path, start):
    served = start(["--workers", "2"], {"RELAXML_TEST_INIT_FAIL": "1"})
    assert served.process.wait(60) == 3
    assert "Error: a worker failed to start: RuntimeError: weights not found" in served.log()


def test_one_process_gets_the_first_device_before_init_and_is_ready(serve):
    client = serve(DeviceProbe, devices="cuda:3,cuda:4")
    assert client.get("/health").json()["device"] == "cuda:3"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"status": "READY", "workers": 1, "ready": 1}
    answer = client.post("/predict", json={"tasks": [{"id": 1, "data": {}}]}).json()
    assert answer["results"][0]["score"] == 1.0  # warmed up once before predicting
    model = client.app.state.backend.model
    assert (model.device_in_init, model.device) == ("cuda:3", "cuda:3")


def test_relaxml_predict_builds_the_model_on_the_first_device_and_warms_it_up(tmp_path):
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"id": 1, "data": {"text": "a"}}]))
    out = tmp_path / "predictions.json"
    argv = ["predict", str(ROOT / TARGET), "--tasks", str(tasks), "--out", str(out)]
    done = CliRunner().invoke(main, argv, env={"RELAXML_DEVICES": "cuda:2,cuda:3"})
    assert done.exit_code == 0, done.output
    (prediction,) = json.loads(out.read_text())[0]["predictions"]
    assert prediction["result"][0]["value"]["text"] == ["cuda:2"]
    assert prediction["score"] == 1.0  # warmed up once


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_ready_is_503_down_while_health_is_down(serve):
    client = serve(DeviceProbe)
    backend_of(client).supervisor.fail("the database is corrupt")
    ready = client.get("/ready")
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "DOWN",
        "workers": 1,
        "ready": 1,
        "reason": "the database is corrupt",
    }
    assert client.get("/health").status_code == 503


def test_a_new_version_loads_into_a_fresh_instance_on_the_same_device_warmed_up(serve, tmp_path):
    VersionedProbe.fail_warmup = False
    client = serve(VersionedProbe, devices="cuda:5", data_dir=str(tmp_path / "d"), version_poll=0.1)
    backend = backend_of(client)
    first_instance = backend.model
    path = tmp_path / "d" / "versions" / "versioned-1"
    path.mkdir(parents=True)
    (path / "weights.txt").write_text("trained")
    backend.versions.record("versioned-1", path=path)
    wait_for(lambda: client.get("/health").json()["model_version"] == "versioned-1")
    fresh = backend.model
    assert fresh is not first_instance
    assert (fresh.device_in_init, fresh.device, fresh.weights) == ("cuda:5", "cuda:5", "trained")
    assert fresh.warmups == 1  # warmed up before it replaced the first one


def test_a_new_version_whose_warmup_raises_is_not_served(serve, tmp_path, caplog):
    VersionedProbe.fail_warmup = False
    client = serve(VersionedProbe, data_dir=str(tmp_path / "d"), version_poll=0.1)
    backend = backend_of(client)
    VersionedProbe.fail_warmup = True
    try:
        path = tmp_path / "d" / "versions" / "versioned-1"
        path.mkdir(parents=True)
        (path / "weights.txt").write_text("trained")
        backend.versions.record("versioned-1", path=path)
        message = "warming up version versioned-1 failed: RuntimeError: the new weights"
        wait_for(lambda: message in caplog.text)
    finally:
        VersionedProbe.fail_warmup = False
    assert client.get("/health").json()["model_version"] == "versioned-0"
    assert client.get("/ready").status_code == 200


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_without_the_setting_or_torch_the_device_is_cpu_and_torch_is_not_imported():
    code = (
        "import sys; from relaxml._devices import default_device; "
        "print(default_device(), 'torch' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    answer = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert answer.stdout.split() == ["cpu", "False"], answer.stderr


@pytest.mark.parametrize(("gpu", "device"), [("1", "cuda"), ("0", "cpu")])
def test_with_torch_installed_the_device_is_what_it_reports(gpu, device):
    code = "from relaxml._devices import default_device; print(default_device())"
    env = {
        **os.environ,
        "PYTHONPATH": f"{FAKE_TORCH}{os.pathsep}{ROOT}",
        "RELAXML_TEST_FAKE_GPU": gpu,
    }
    answer = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert answer.stdout.split() == [device], answer.stderr


@pytest.mark.parametrize("bad", ["", "cuda:0,,cuda:1", " , "])
def test_a_bad_device_list_is_refused_naming_the_variable(bad):
    with pytest.raises(ValueError, match="RELAXML_DEVICES"):
        Settings.from_env({}, devices=bad or ",")
