"""`serve`: a model served in the test's process, and `ServedModel`, what a test asks of it."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from starlette.testclient import TestClient

from .._server.app import create_app
from ..model import LabelStudioModel
from ..settings import Settings
from ._assertions import assert_predict_response
from ._fakelabelstudio import FakeLabelStudio

FINISHED = ("succeeded", "failed", "cancelled")


class ServedModel:
    """A served model, called over its HTTP routes (Starlette's `TestClient`, in process).

    `client` is the `TestClient` itself, for any route; `model` the instance being served.
    """

    def __init__(self, client: TestClient) -> None:
        self.client = client

    @property
    def model(self) -> LabelStudioModel:
        """The model instance the server serves now (a new one after each training run)."""
        return self.client.app.state.backend.model  # type: ignore[attr-defined,no-any-return]

    @property
    def model_version(self) -> str:
        """The version `/health` reports."""
        return str(self.health()["model_version"])

    def health(self) -> dict[str, Any]:
        """`GET /health`."""
        answer: dict[str, Any] = self.client.get("/health").json()
        return answer

    def predict(
        self,
        tasks: Sequence[dict[str, Any]],
        label_config: str | None = None,
        *,
        project: str = "1.1700000000",
        context: dict[str, Any] | None = None,
        check: bool = True,
    ) -> list[dict[str, Any]]:
        """`POST /predict` as Label Studio sends it; the `results`, one per task.

        With `check` (the default) the answer must be one Label Studio accepts, each prediction
        fitting `label_config` (`assert_predict_response`); an error answer fails the test
        with its JSON.
        """
        body: dict[str, Any] = {"tasks": list(tasks), "project": project}
        if label_config is not None:
            body["label_config"] = label_config
        if context is not None:
            body["params"] = {"context": context}
        response = self.client.post("/predict", json=body)
        status = response.status_code
        assert status == 200, f"/predict answered {status}: {response.text}"
        answer = response.json()
        if check:
            assert_predict_response(answer, len(tasks), label_config)
        return list(answer["results"])

    def train(self, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        """Send a webhook event (`FakeLabelStudio.start_training_event`, ...) and wait for the
        training run that takes it; the run (`state`, `version`, `error`, ...)."""
        response = self.client.post("/webhook", json=payload)
        assert response.status_code in (200, 201), response.text
        answer = response.json()
        assert answer.get("status") == "accepted", f"the event was not queued: {answer}"
        return wait_for_training(self, answer["job"], timeout)


def wait_for_training(served: ServedModel, job: str, timeout: float = 60.0) -> dict[str, Any]:
    """Wait until the training run that took `job` (`event-N` from `/webhook`, or `run-N`)
    has finished; the run. Fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        run: dict[str, Any] = served.client.get(f"/jobs/{job}").json()
        if run.get("state") in FINISHED:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"training of {job} did not finish in {timeout} s: {run}")
        time.sleep(0.02)


@contextmanager
def serve(
    model: type[LabelStudioModel] | LabelStudioModel,
    *,
    label_studio: FakeLabelStudio | None = None,
    **settings: Any,
) -> Iterator[ServedModel]:
    """Serve a model class (or instance) for the `with` block: startup, routes and shutdown as
    under `relaxml serve`, in this process.

    `settings` are `relaxml.Settings` fields (`local_files_root=...`, `delivery="inline"`);
    the data directory is a fresh temporary one unless `data_dir` is given. With
    `label_studio`, the backend uses that `FakeLabelStudio`'s URL and key.
    """
    with tempfile.TemporaryDirectory(prefix="relaxml-test-") as scratch:
        settings.setdefault("data_dir", scratch)
        if label_studio is not None:
            settings.setdefault("label_studio_url", label_studio.url)
            settings.setdefault("label_studio_api_key", label_studio.api_key)
        app = create_app(model, Settings(**settings))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield ServedModel(client)
