"""Smoke test of the end-to-end harness: a real Label Studio driving a tiny stub ML backend."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from ..support.labelstudio import ApiError, LabelStudio
from ..support.processes import BackendFactory, ProcessStartError

MODEL_VERSION = "stub-v1"
LABEL_CONFIG = """
<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text">
    <Choice value="Positive"/>
    <Choice value="Negative"/>
  </Choices>
</View>
"""


class StubBackendHandler(BaseHTTPRequestHandler):
    """A minimal ML backend: every task is predicted "Positive"."""

    server: StubBackend

    def do_GET(self) -> None:
        """Answer `/health`."""
        self.server.paths.append(self.path)
        if self.path == "/health":
            self.reply({"status": "UP"})
        else:
            self.reply({"error": "not found"}, status=404)

    def do_POST(self) -> None:
        """Answer `/setup`, `/predict` and `/webhook`."""
        self.server.paths.append(self.path)
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/setup":
            self.reply({"model_version": MODEL_VERSION})
        elif self.path == "/predict":
            self.reply({"results": [self.predict(task) for task in body["tasks"]]})
        elif self.path == "/webhook":
            self.reply({})
        else:
            self.reply({"error": "not found"}, status=404)

    @staticmethod
    def predict(task: dict[str, Any]) -> dict[str, Any]:
        """Return one choices prediction for `task`."""
        choice = {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["Positive"]},
        }
        return {"result": [choice], "score": 0.5, "model_version": MODEL_VERSION}

    def reply(self, payload: object, status: int = 200) -> None:
        """Send `payload` as JSON."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


class StubBackend(ThreadingHTTPServer):
    """The stub backend's server, recording the paths it was asked for."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), StubBackendHandler)
        self.paths: list[str] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def stub_backend() -> Iterator[StubBackend]:
    """Run the stub backend in a thread for one test."""
    server = StubBackend()
    thread = threading.Thread(target=server.serve_forever, name="stub-ml-backend")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def test_predictions_flow_from_a_stub_backend(
    label_studio: LabelStudio, stub_backend: StubBackend
) -> None:
    project = label_studio.create_project("Harness smoke test", LABEL_CONFIG)
    task_ids = label_studio.import_tasks(
        project["id"], [{"data": {"text": f"text {n}"}} for n in range(3)]
    )
    assert len(set(task_ids)) == 3

    ml_backend = label_studio.register_ml_backend(project["id"], stub_backend.url, title="stub")
    assert label_studio.get_ml_backend(ml_backend["id"])["state"] == "CO"

    label_studio.retrieve_predictions(project["id"])
    predictions = label_studio.list_predictions(project_id=project["id"])
    assert sorted(prediction["task"] for prediction in predictions) == sorted(task_ids)
    assert {prediction["model_version"] for prediction in predictions} == {MODEL_VERSION}
    assert label_studio.get_task(task_ids[0])["predictions"][0]["result"][0]["value"] == {
        "choices": ["Positive"]
    }
    assert stub_backend.paths.count("/predict") == 1


def test_personal_access_tokens(label_studio: LabelStudio) -> None:
    whoami = f"{label_studio.url}/api/current-user/whoami"
    pat = label_studio.personal_access_token()
    assert label_studio.personal_access_token() == pat

    access = label_studio.access_token(pat)
    response = requests.get(whoami, headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert response.status_code == 200
    assert response.json()["email"] == label_studio.username

    renewed = label_studio.personal_access_token(renew=True)
    assert renewed != pat
    with pytest.raises(ApiError) as revoked:
        label_studio.access_token(pat)
    assert revoked.value.response.status_code == 401
    assert label_studio.access_token(renewed)


def test_restart_keeps_data_port_and_tokens(label_studio: LabelStudio) -> None:
    project = label_studio.create_project("Survives a restart", LABEL_CONFIG)
    pat = label_studio.personal_access_token()
    pid = label_studio.pid

    label_studio.stop()
    assert not label_studio.running
    label_studio.start()

    assert label_studio.pid != pid
    assert (
        label_studio.api("GET", f"/api/projects/{project['id']}/").json()["title"]
        == "Survives a restart"
    )
    assert label_studio.access_token(pat)


def test_backend_factory_starts_and_stops_processes(
    backend_factory: BackendFactory, free_port: int, tmp_path: Path
) -> None:
    (tmp_path / "health").write_text("UP")
    argv = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(tmp_path),
        str(free_port),
    ]
    backend = backend_factory(argv, {}, free_port)
    assert requests.get(f"{backend.url}/health", timeout=5).text == "UP"
    backend.stop()
    assert not backend.running

    backend = backend_factory(argv, {}, free_port)
    assert backend.kill() == -signal.SIGKILL

    crashing = [sys.executable, "-c", "print('boom'); raise SystemExit(3)"]
    with pytest.raises(ProcessStartError, match="boom"):
        backend_factory(crashing, {}, free_port)
