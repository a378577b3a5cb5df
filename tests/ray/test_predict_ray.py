"""`relaxml predict --engine ray`: the same file as `--engine local`, on Ray Data."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from ..support.model_files import CONFIG
from ..support.ray_offline import (
    child_env,
    command,
    invoke,
    ray_processes,
    write_models,
)

RAY = ("--engine", "ray", "--replicas", "2", "--num-cpus", "0.5")


def predict_both(tmp_path: Path, target: str, tasks: list[dict[str, Any]]) -> tuple[Any, Any]:
    """`predict` with each engine over `tasks`; both results (their files beside)."""
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    config = tmp_path / "config.xml"
    config.write_text(CONFIG)
    common = ("predict", target, "--tasks", tmp_path / "tasks.json", "--config", config)
    local = invoke(*common, "--out", tmp_path / "local.json")
    ray = invoke(*common, "--out", tmp_path / "ray.json", *RAY)
    return local, ray


def lines(output: str) -> list[str]:
    """The lines of a command's output after its progress bar, the written count left out."""
    return [line for line in output.splitlines() if line.startswith("task ")]


def test_ten_thousand_tasks_give_the_local_engine_s_file_byte_for_byte(ray_session, tmp_path):
    tasks = [{"id": n, "data": {"text": f"text {n}"}} for n in range(1, 10_001)]
    local, ray = predict_both(tmp_path, f"{write_models(tmp_path)}:Sized", tasks)
    assert local.exit_code == ray.exit_code == 1  # "maybe" does not fit the config
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "local.json").read_bytes()
    assert lines(ray.output) == lines(local.output)
    assert len(lines(ray.output)) == 10  # tasks 1000, 2000, ... 10000: one problem each
    assert "task 1000: result[0]: " in ray.output
    assert "9000 predictions for 10000 tasks" in ray.output
    written = json.loads((tmp_path / "ray.json").read_text())
    assert [t["data"]["text"] for t in written] == [t["data"]["text"] for t in tasks]
    scores = {p["score"] for t in written for p in t["predictions"]}
    assert scores == {0.16}  # every call of 16 tasks, as the local engine cut them


def test_a_task_that_raises_gets_an_error_entry_and_every_other_task_its_prediction(
    ray_session, tmp_path
):
    texts = {7: "bad seven", 20: "huge twenty", 21: "bad twenty-one", 64: "bad sixty-four"}
    tasks = [{"id": n, "data": {"text": texts.get(n, f"fine {n}")}} for n in range(1, 81)]
    local, ray = predict_both(tmp_path, f"{write_models(tmp_path)}:Raising", tasks)
    assert ray.exit_code == local.exit_code == 1
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "local.json").read_bytes()
    assert lines(ray.output) == [
        "task 7: predict raised ValueError: cannot read bad seven",
        "task 20: Raising.predict ran out of memory on task 20 alone: "
        "OutOfMemoryError: CUDA out of memory",
        "task 21: predict raised ValueError: cannot read bad twenty-one",
        "task 64: predict raised ValueError: cannot read bad sixty-four",
    ]
    assert "76 predictions for 80 tasks" in ray.output
    written = json.loads((tmp_path / "ray.json").read_text())
    missing = [n for n, task in enumerate(written, 1) if not task["predictions"]]
    assert missing == [7, 20, 21, 64]
    scores = [t["predictions"][0]["score"] for t in written[:8] if t["predictions"]]
    assert scores == [0.4] * 4 + [0.2] * 2 + [0.1]  # 1-8 raises: 1-4, then 5-6, 7 alone, 8


def test_predict_on_ray_as_a_command_leaves_no_ray_process(tmp_path, ray_dir):
    models = write_models(tmp_path)
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"data": {"text": f"t{n}."}} for n in range(100)]))
    config = tmp_path / "config.xml"
    config.write_text(CONFIG)
    args = ("predict", f"{models}:Sized", "--tasks", tasks, "--config", config)
    done = subprocess.run(
        command(*args, "--out", tmp_path / "ray.json", "--engine", "ray", "--replicas", "2"),
        env=child_env(ray_dir),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "100 predictions for 100 tasks" in done.stderr
    assert any(ray_dir.rglob("raylet*")), "the command's Ray kept its files elsewhere"
    assert ray_processes(ray_dir) == []
    local = subprocess.run(
        command(*args, "--out", tmp_path / "local.json"),
        env=child_env(ray_dir),
        capture_output=True,
        timeout=60,
        check=True,
    )
    assert local.returncode == 0
    assert (tmp_path / "ray.json").read_bytes() == (tmp_path / "local.json").read_bytes()


def test_with_an_address_the_command_uses_that_cluster_and_leaves_it_running(
    ray_session, tmp_path, ray_dir
):
    models = write_models(tmp_path)
    tasks = tmp_path / "tasks.json"
    tasks.write_text(json.dumps([{"data": {"text": f"t{n}."}} for n in range(40)]))
    address = ray_session.get_runtime_context().gcs_address
    args = ("predict", f"{models}:Sized", "--tasks", tasks, "--out", tmp_path / "o.json")
    ray = ("--engine", "ray", "--num-cpus", "0.5", "--ray-address", address)
    done = subprocess.run(
        command(*args, *ray),
        env=child_env(ray_dir),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "40 predictions for 40 tasks" in done.stderr
    assert not any(ray_dir.rglob("raylet*"))  # no Ray of its own was started
    assert ray_processes(ray_dir) == []  # and no reaper is left behind

    @ray_session.remote(num_cpus=0.5)
    def alive() -> str:
        return "yes"

    assert ray_session.get(alive.remote(), timeout=60) == "yes"  # the cluster runs on
