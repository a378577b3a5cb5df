"""`relaxml serve --workers 2` as real processes: one training per event, and every worker
serves the new version without a restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from .conftest import first

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_two_workers_train_once_and_both_swap(tmp_path, captured):
    port = free_port()
    fits = tmp_path / "fits.txt"
    log = (tmp_path / "serve.log").open("wb")
    env = {
        **os.environ,
        "RELAXML_TEST_FITS": str(fits),
        "RELAXML_TEST_FIT_SECONDS": "1",
        "RELAXML_VERSION_POLL": "0.2",
    }
    argv = [sys.executable, "-m", "relaxml", "serve", "tests/support/worker_model.py:Tally"]
    argv += ["--workers", "2", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--data-dir", str(tmp_path / "data")]
    server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)

        hook = first(captured, "/webhook", action="START_TRAINING")
        for _ in range(5):
            assert (
                requests.post(url + "/webhook", json=hook, timeout=5).json()["status"] == "accepted"
            )

        def versions() -> dict[int, str]:
            seen: dict[int, str] = {}
            for _ in range(40):  # a new connection each time: both workers answer
                health = requests.get(url + "/health", timeout=2).json()
                seen[health["worker"]] = health["model_version"]
            return seen

        deadline = time.monotonic() + 30
        while True:
            lines = fits.read_text().splitlines() if fits.exists() else []
            seen = versions()
            final = f"tally-{len(lines)}"
            if lines and len(seen) == 2 and set(seen.values()) == {final}:
                break
            assert time.monotonic() < deadline, (seen, lines)
            time.sleep(0.3)
        time.sleep(1.0)  # nothing else trains later
        lines = fits.read_text().splitlines()
        assert 1 <= len(lines) <= 2  # 5 events: one run, plus at most one coalesced follow-up
        assert sum(int(line.split()[1]) for line in lines) == 5  # every event trained once
        assert len({line.split()[0] for line in lines}) == 1  # all on the leader
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        log.close()
