"""`relaxml annotate --engine ray`: predictions on Ray Data, stored by the one writer here."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Any

import pytest

from relaxml.testing import FakeLabelStudio

from ..conftest import wait_for
from ..support.model_files import CONFIG
from ..support.ray_offline import (
    child_env,
    command,
    invoke,
    ray_processes,
    write_models,
)

RAY = ("--engine", "ray", "--replicas", "2", "--num-cpus", "0.5")


@pytest.fixture
def fake() -> Any:
    with FakeLabelStudio() as fake:
        yield fake


def project(fake: FakeLabelStudio, texts: list[str]) -> int:
    project_id = fake.add_project(CONFIG)
    for number, text in enumerate(texts):
        fake.add_task(project_id, {"text": text}, id=101 + number)
    return project_id


def test_each_prediction_is_stored_once_failures_alone_and_a_second_run_stores_none(
    ray_session, fake, tmp_path
):
    texts = [f"fine {n}" for n in range(60)]
    texts[4], texts[33] = "bad four", "huge thirty-three"
    project_id = project(fake, texts)
    for task_id in (101, 102):  # already predicted by this version
        fake.store_prediction({"task": task_id, "result": [], "model_version": "r-1"})
    target = f"{write_models(tmp_path)}:Raising"
    args = ("annotate", target, "--project", str(project_id), "--import-size", "20", *RAY)
    result = invoke(*args, env=fake.env)
    assert result.exit_code == 1, result.output
    assert "task 105: predict raised ValueError: cannot read bad four" in result.output
    assert "task 134: Raising.predict ran out of memory on task 134 alone" in result.output
    assert "56 predicted, 2 skipped (already predicted), 2 failed" in result.output
    assert "(model version r-1)" in result.output
    stored = fake.predictions_by_task()
    assert stored == {t: 1 for t in range(101, 161) if t not in (105, 134)}
    assert sum(fake.imports) == 56
    assert all(size <= 24 for size in fake.imports)  # blocks of 20, filled by whole chunks

    again = invoke(*args, env=fake.env)
    assert "0 predicted, 58 skipped (already predicted), 2 failed" in again.output
    assert fake.predictions_by_task() == stored


def test_resumes_after_a_kill_without_duplicates_and_no_ray_process_outlives_it(
    fake, tmp_path, ray_dir
):
    project_id = project(fake, [f"text {n}" for n in range(48)])
    run_args = command(
        "annotate", f"{write_models(tmp_path)}:Good", "--project", str(project_id),
        "--import-size", "4", *RAY,
    )  # fmt: skip
    env = child_env(ray_dir, **fake.env, RELAXML_TEST_SLEEP="0.3")
    run = subprocess.Popen(run_args, env=env, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(fake.imports) >= 3, timeout=120)
        assert ray_processes(ray_dir), "the command's Ray runs while it predicts"
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
        run.wait()
    deadline = time.monotonic() + 70  # the reaper's patience, and some
    while ray_processes(ray_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_processes(ray_dir) == []  # the killed command's Ray went with it, reaped
    before = fake.predictions_by_task()
    assert 12 <= len(before) < 48
    assert set(before.values()) == {1}

    env["RELAXML_TEST_SLEEP"] = "0"
    done = subprocess.run(
        run_args, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"{48 - len(before)} predicted, {len(before)} skipped" in done.stderr
    assert fake.predictions_by_task() == dict.fromkeys(range(101, 149), 1)
    assert ray_processes(ray_dir) == []
