"""A per-project model under `relaxml serve --workers 2`, as real processes: two projects train
different versions that every worker serves, a restart keeps them, and with
`RELAXML_MAX_LOADED_MODELS=2` five projects are each answered by their own model."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import first
from .test_workers import ROOT, free_port


@pytest.fixture
def bodies(captured: list[dict[str, Any]]) -> Any:
    setup = first(captured, "/setup")
    predict = first(captured, "/predict")
    hook = first(captured, "/webhook", action="START_TRAINING")

    def make(kind: str, project: int) -> dict[str, Any]:
        body = copy.deepcopy({"setup": setup, "predict": predict, "hook": hook}[kind])
        if kind == "hook":
            body["project"]["id"] = project
            return body
        body["project"] = f"{project}.1795846025"
        for task in body.get("tasks", []):
            task["project"] = project
        return body

    return make


@contextmanager
def served(tmp_path: Path, **env: str) -> Iterator[str]:
    """`relaxml serve` of `ProjectTally` with two workers on `tmp_path/data`; its URL."""
    port = free_port()
    log_path = tmp_path / f"serve-{port}.log"
    argv = [sys.executable, "-m", "relaxml", "serve", "tests/support/worker_model.py:ProjectTally"]
    argv += ["--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(tmp_path / "data")]
    environ = {**os.environ, "RELAXML_VERSION_POLL": "0.2", **env}
    with log_path.open("wb") as log:
        server = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if requests.get(url + "/ready", timeout=1).status_code == 200:
                        break
                except requests.ConnectionError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                assert server.poll() is None, log_path.read_text()
                time.sleep(0.1)
            yield url
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(30)


def train(url: str, hook: dict[str, Any]) -> None:
    job = requests.post(url + "/webhook", json=hook, timeout=5).json()["job"]
    deadline = time.monotonic() + 30
    while (state := requests.get(f"{url}/jobs/{job}", timeout=5).json()["state"]) in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert state == "succeeded"


def answers(url: str, body: dict[str, Any], times: int = 12) -> set[tuple[str, float]]:
    """(version, score) of `times` predictions, each on a new connection (both workers)."""
    seen = set()
    for _ in range(times):
        answer = requests.post(url + "/predict", json=body, timeout=10)
        assert answer.status_code == 200, answer.text
        for result in answer.json()["results"]:
            seen.add((result["model_version"], result["score"]))
    return seen


def until(expected: set[tuple[str, float]], url: str, body: dict[str, Any]) -> None:
    deadline = time.monotonic() + 20
    while (seen := answers(url, body)) != expected:
        assert time.monotonic() < deadline, (seen, expected)
        time.sleep(0.2)


def test_two_projects_train_different_versions_across_workers_and_restarts(tmp_path, bodies):
    with served(tmp_path) as url:
        for project in (1, 1, 2):
            train(url, bodies("hook", project))
        until({("p1-2", 2.0)}, url, bodies("predict", 1))
        until({("p2-1", 1.0)}, url, bodies("predict", 2))
        assert answers(url, bodies("predict", 3)) == {("project-0", 0.0)}
        listed = requests.get(url + "/versions", params={"project": 1}, timeout=5).json()
        assert listed["versions"] == ["project-0", "p1-1", "p1-2"]
    with served(tmp_path) as url:  # a restart: each project's current version, at once
        assert answers(url, bodies("predict", 1)) == {("p1-2", 2.0)}
        assert answers(url, bodies("predict", 2)) == {("p2-1", 1.0)}
        setup = requests.post(url + "/setup", json=bodies("setup", 2), timeout=5).json()
        assert setup == {"model_version": "p2-1"}


def test_five_projects_two_resident_each_answer_right(tmp_path, bodies):
    with served(tmp_path, RELAXML_MAX_LOADED_MODELS="2") as url:
        for project in range(1, 6):
            for _ in range(project % 3):
                train(url, bodies("hook", project))
        for _ in range(2):
            for project in range(1, 6):
                fits = project % 3
                version = f"p{project}-{fits}" if fits else "project-0"
                until({(version, float(fits))}, url, bodies("predict", project))
        metrics = requests.get(url + "/metrics", timeout=5).text
        assert "relaxml_resident_models 2" in metrics
        assert "relaxml_model_evictions_total " in metrics
