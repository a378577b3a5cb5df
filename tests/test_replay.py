"""Replay every request a real Label Studio 1.23.2 sent, in order, through one app."""

from __future__ import annotations

import time

from .conftest import backend_of
from .support.models import Trainable


def test_replaying_the_whole_capture_gives_valid_json_answers(serve, captured):
    client = serve(Trainable)
    for request in captured:
        answer = client.request(request["method"], request["path"], json=request["body"])
        assert answer.status_code == 200, (request["step"], request["path"], answer.text)
        payload = answer.json()
        if request["path"] == "/setup":
            assert isinstance(payload["model_version"], str)
            assert payload["model_version"]
        elif request["path"] == "/predict":
            results = payload["results"]
            assert len(results) == len(request["body"]["tasks"])
            for entry in results:
                for prediction in entry if isinstance(entry, list) else [entry]:
                    assert isinstance(prediction["result"], list)
                    assert isinstance(prediction["score"], float)
                    assert isinstance(prediction["model_version"], str)
        elif request["path"] in ("/health", "/"):
            assert payload["status"] == "UP"
        elif request["path"] == "/versions":
            assert payload["versions"]
    store = backend_of(client).training_store
    deadline = time.monotonic() + 15
    while store.pending() or any(run.state == "running" for run in store.runs()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert store.runs()
    assert all(run.state == "succeeded" for run in store.runs())


def test_replay_is_fast(serve, captured):
    """Every captured call answers well inside Label Studio's tightest timeout (1 s)."""
    client = serve(Trainable)
    for request in captured:
        start = time.perf_counter()
        client.request(request["method"], request["path"], json=request["body"])
        assert time.perf_counter() - start < 0.5, request["path"]
