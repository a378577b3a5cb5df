"""SIGTERM to `relaxml serve` (a real process) while an inline `/predict` is in flight: the
client gets JSON, the finished prediction or a 503, never uvicorn's text/plain 500."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .test_workers import free_port

MODEL = '''
import os, time
from pathlib import Path
from relaxml import LabelStudioModel

class Sleepy(LabelStudioModel):
    """Predicts for SLEEPY_SECONDS, or until the file SLEEPY_STOP exists."""

    model_version = "sleepy-1"

    def predict(self, tasks, context):
        Path(os.environ["SLEEPY_ENTERED"]).touch()
        deadline = time.monotonic() + float(os.environ["SLEEPY_SECONDS"])
        while time.monotonic() < deadline and not Path(os.environ["SLEEPY_STOP"]).exists():
            time.sleep(0.05)
        return [{"result": [], "score": 0.5} for _ in tasks]
'''


class Served:
    def __init__(self, tmp_path: Path, seconds: float) -> None:
        (tmp_path / "sleepy.py").write_text(MODEL)
        self.entered, self.stop = tmp_path / "entered", tmp_path / "stop"
        self.log_path = tmp_path / "serve.log"
        self.port = free_port()
        env = {
            **os.environ,
            "SLEEPY_SECONDS": str(seconds),
            "SLEEPY_ENTERED": str(self.entered),
            "SLEEPY_STOP": str(self.stop),
        }
        argv = [sys.executable, "-m", "relaxml", "serve", f"{tmp_path / 'sleepy.py'}:Sleepy"]
        argv += ["--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--data-dir", str(tmp_path / "data")]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert self.process.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def predict_during_sigterm(self) -> requests.Response:
        """POST /predict; SIGTERM once the model is predicting; the answer."""
        answers: list[Any] = []
        body = {"tasks": [{"id": 1, "data": {"text": "x"}}], "project": "1.1"}

        def call() -> None:
            try:
                answers.append(requests.post(self.url + "/predict", json=body, timeout=60))
            except requests.RequestException as exc:  # pragma: no cover - shown on failure
                answers.append(exc)

        thread = threading.Thread(target=call)
        thread.start()
        deadline = time.monotonic() + 30
        while not self.entered.exists():
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.05)
        self.process.send_signal(signal.SIGTERM)
        thread.join(60)
        self.stop.touch()  # let the model's thread end, so the process can exit
        assert answers, self.log()
        assert isinstance(answers[0], requests.Response), (answers[0], self.log())
        return answers[0]

    def close(self) -> None:
        self.stop.touch()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Any]:
    started: list[Served] = []

    def start(seconds: float) -> Served:
        started.append(Served(tmp_path, seconds))
        return started[-1]

    yield start
    for server in started:
        server.close()


def test_sigterm_lets_an_inline_predict_finish_and_answer_json(served):
    server = served(seconds=1.5)
    answer = server.predict_during_sigterm()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["results"] == [{"result": [], "score": 0.5, "model_version": "sleepy-1"}]
    assert server.process.wait(30) is not None


def test_sigterm_past_the_grace_period_answers_a_json_503_not_text(served):
    server = served(seconds=60)  # longer than the 10 s grace period of `relaxml serve`
    start = time.monotonic()
    answer = server.predict_during_sigterm()
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == "shutting_down"
    assert time.monotonic() - start < 30
    server.process.wait(30)
    log = server.log()
    assert "POST /predict cut off by the shutdown deadline: answered 503" in log
    assert "Traceback" not in log
