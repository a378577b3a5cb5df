"""`PredictRoute` answers `POST /predict` exactly as the routed endpoint does.

The routed endpoint still serves `/predict` under a `root_path` (the app mounted behind a
prefix), so each request goes both ways and the answers are compared byte for byte.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from relaxml import Context, LabelStudioModel, Task, create_app
from relaxml.settings import Settings

from .support.models import AsyncEcho, Echo, choice

CONFIG = (
    '<View><Text name="text" value="$text"/>'
    '<Choices name="sentiment" toName="text">'
    '<Choice value="positive"/><Choice value="negative"/></Choices></View>'
)


class Picky(LabelStudioModel):
    """Fails in the ways a model can: raises, or returns what is not a prediction."""

    def predict(self, tasks: list[Task], context: Context) -> Any:
        kind = tasks[0].data.get("kind")
        if kind == "raise":
            raise RuntimeError("boom in predict")
        if kind == "short":
            return []
        if kind == "nan":
            return [{"result": [choice(t)], "score": float("nan")} for t in tasks]
        return [{"result": [choice(t)], "score": 0.25} for t in tasks]


def _pair(model: type[LabelStudioModel], tmp_path: Any, **settings: Any) -> tuple[Any, Any]:
    app = create_app(model, Settings(data_dir=str(tmp_path), **settings))
    direct = TestClient(app, raise_server_exceptions=False)
    prefixed = TestClient(app, raise_server_exceptions=False, root_path="/ml")
    direct.__enter__()
    return direct, prefixed


def _tasks(count: int, **data: Any) -> list[dict[str, Any]]:
    return [{"id": n, "data": {"text": f"t{n}", **data}} for n in range(1, count + 1)]


BODIES: list[tuple[str, bytes, dict[str, str]]] = [
    ("one task", json.dumps({"tasks": _tasks(1)}).encode(), {}),
    ("many tasks", json.dumps({"tasks": _tasks(40), "label_config": CONFIG}).encode(), {}),
    ("no tasks", b'{"tasks": []}', {}),
    ("interactive", json.dumps({"tasks": _tasks(1), "params": {"context": {}}}).encode(), {}),
    ("not JSON", b"{nope", {}),
    ("empty body", b"", {}),
    ("a list", b"[1, 2]", {}),
    ("no tasks key", b'{"task": []}', {}),
    ("a task without id", b'{"tasks": [{"data": {}}]}', {}),
    ("a huge id", b'{"tasks": [{"id": 9223372036854775808, "data": {}}]}', {}),
    ("too deep", b'{"tasks": ' + b"[" * 150 + b"]" * 150 + b"}", {}),
    ("too large", json.dumps({"tasks": _tasks(200)}).encode(), {}),
    ("a lone surrogate", b'{"tasks": [{"id": 1, "data": {"text": "\\ud800"}}]}', {}),
    ("model raises", json.dumps({"tasks": _tasks(1, kind="raise")}).encode(), {}),
    ("model answers short", json.dumps({"tasks": _tasks(2, kind="short")}).encode(), {}),
    ("model answers NaN", json.dumps({"tasks": _tasks(2, kind="nan")}).encode(), {}),
]


@pytest.mark.parametrize(("name", "body", "headers"), BODIES, ids=[b[0] for b in BODIES])
def test_the_fast_route_answers_as_the_routed_endpoint(tmp_path, name, body, headers):
    direct, prefixed = _pair(Picky, tmp_path, max_body_size=8000)
    try:
        fast = direct.post("/predict", content=body, headers=headers)
        routed = prefixed.post("/ml/predict", content=body, headers=headers)
    finally:
        direct.__exit__(None, None, None)
    assert fast.status_code == routed.status_code
    assert fast.content == routed.content
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["content-length"] == routed.headers["content-length"]
    assert fast.status_code < 500 or "Traceback" not in fast.text
    if name == "one task":
        assert fast.json()["results"][0]["score"] == 0.25


@pytest.mark.parametrize("model", [Echo, AsyncEcho])
def test_the_fast_route_counts_requests_under_the_route_template(tmp_path, model):
    direct, _ = _pair(model, tmp_path)
    try:
        for _ in range(3):
            assert direct.post("/predict", json={"tasks": _tasks(2)}).status_code == 200
        text = direct.get("/metrics").text
    finally:
        direct.__exit__(None, None, None)
    assert 'relaxml_requests_total{method="POST",route="/predict",status="200"} 3' in text


def test_other_methods_and_paths_go_to_the_router(tmp_path):
    direct, _ = _pair(Echo, tmp_path)
    try:
        wrong_method = direct.get("/predict")
        trailing = direct.post("/predict/", json={"tasks": []}, follow_redirects=False)
    finally:
        direct.__exit__(None, None, None)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"
    assert trailing.status_code in (307, 404)  # the router's answer, not the fast route's


def test_basic_auth_guards_the_fast_route(tmp_path):
    direct, _ = _pair(Echo, tmp_path, basic_auth_user="ls", basic_auth_pass="s3cret-pass")
    try:
        refused = direct.post("/predict", json={"tasks": _tasks(1)})
        allowed = direct.post("/predict", json={"tasks": _tasks(1)}, auth=("ls", "s3cret-pass"))
    finally:
        direct.__exit__(None, None, None)
    assert refused.status_code == 401
    assert allowed.status_code == 200
