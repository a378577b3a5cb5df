"""`relaxml serve --engine ray` starts, logs where it serves, and leaves no Ray process behind:
after SIGTERM, and when the model fails to start."""

from __future__ import annotations

from pathlib import Path

import requests

from ..support.rayserve import RayServe
from .conftest import require_ray


def test_sigterm_stops_serving_and_no_ray_process_outlives_the_command(tmp_path: Path) -> None:
    require_ray()
    options = ["--autoscale", "1:2", "--num-cpus", "0.25", "--data-dir", str(tmp_path / "data")]
    # a file target, relative to the command's directory: every Ray process finds it
    server = RayServe("tests/support/ray_model.py:Where", options, {}, tmp_path / "serve.log")
    try:
        server.wait_serving()
        running = " ".join(server.processes().values())
        for part in ("raylet", "gcs_server", "ray::Coordinator", "ray::ServeReplica"):
            assert part in running, part
        assert requests.get(server.url + "/health", timeout=5).json()["worker"] != "coordinator"
    finally:
        status, left = server.stop()
    assert left == {}, left  # every process of its Ray ended with the command
    assert status == 0, server.log()[-3000:]
    log = server.log()
    assert f"on Ray at {server.url}: autoscaling 1-2 replicas, 0.25 CPU and 0 GPU each" in log
    assert "received SIGTERM" in log


def test_a_model_that_fails_to_start_exits_3_and_leaves_no_ray_process(tmp_path: Path) -> None:
    require_ray()
    options = ["--data-dir", str(tmp_path / "data")]
    env = {"RELAXML_TEST_FAIL_INIT": "1"}
    server = RayServe("tests.support.ray_model:Where", options, env, tmp_path / "serve.log")
    status = server.process.wait(timeout=90)
    left = server.leftovers()
    assert left == {}, left
    assert status == 3, server.log()[-3000:]
    assert (
        "Error: the model failed to start: RuntimeError: this model cannot load its weights"
        in server.log()
    )
