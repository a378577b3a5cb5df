"""Out-of-memory splitting in real worker processes (`relaxml serve --workers 2`)."""

from __future__ import annotations

import sys
from pathlib import Path

import requests

from .support.processes import free_port, run_backend

ROOT = Path(__file__).resolve().parents[1]


def test_two_workers_split_a_call_that_runs_out_of_memory(tmp_path):
    port = free_port()
    argv = [sys.executable, "-m", "relaxml", "serve", "tests/support/oom_model.py:Greedy"]
    argv += ["--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(tmp_path / "data"), "--delivery", "inline"]
    backend = run_backend(argv, {"PYTHONPATH": str(ROOT)}, port, tmp_path / "serve.log")
    try:
        tasks = [{"id": i, "data": {"huge": i == 5}} for i in range(1, 9)]
        for _ in range(4):  # several requests: both workers answer some
            answer = requests.post(backend.url + "/predict", json={"tasks": tasks}, timeout=30)
            assert answer.status_code == 200, answer.text
            results = answer.json()["results"]
            assert [r["result"][0]["value"]["choices"] for r in results if "result" in r] == [
                [str(i)] for i in (1, 2, 3, 4, 6, 7, 8)
            ]
            assert results[4]["error"] == "out_of_memory"
            assert "OutOfMemoryError" in results[4]["detail"]
        alone = requests.post(backend.url + "/predict", json={"tasks": tasks[4:5]}, timeout=30)
        assert alone.status_code == 503
        assert alone.json()["error"] == "out_of_memory"
        assert backend.running
    finally:
        backend.stop()
