"""Bad input gets a clear JSON 4xx naming the field, and the server keeps serving."""

from __future__ import annotations

import pytest

from relaxml._server import routes

from .support.models import Echo


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "detail"),
    [
        ("/predict", b"{bad", 400, None, "not valid JSON"),
        ("/predict", b"", 400, None, "body is empty"),
        ("/predict", b"[1, 2]", 400, None, "must be a JSON object, got a list"),
        ("/predict", b"\xff\xfe", 400, None, "not valid JSON"),
        ("/predict", b"{}", 422, "tasks", "missing field 'tasks'"),
        ("/predict", b'{"tasks": {}}', 422, "tasks", "'tasks' must be a list, got an object"),
        ("/predict", b'{"tasks": [5]}', 422, "tasks[0]", "must be an object, got a number"),
        ("/predict", b'{"tasks": [{"data": {}}]}', 422, "tasks[0].id", "missing field"),
        ("/predict", b'{"tasks": [{"id": "1", "data": {}}]}', 422, "tasks[0].id", "integer"),
        ("/predict", b'{"tasks": [{"id": true, "data": {}}]}', 422, "tasks[0].id", "integer"),
        ("/predict", b'{"tasks": [{"id": 1}]}', 422, "tasks[0].data", "missing"),
        ("/predict", b'{"tasks": [{"id": 1, "data": "x"}]}', 422, "tasks[0].data", "object"),
        ("/predict", b'{"tasks": [], "params": 3}', 422, "params", "must be an object"),
        (
            "/predict",
            b'{"tasks": [], "params": {"context": [1]}}',
            422,
            "params.context",
            "object or null",
        ),
        ("/predict", b'{"tasks": [], "project": [1]}', 422, "project", "must be a string"),
        ("/predict", b'{"tasks": [], "label_config": 1}', 422, "label_config", "string or null"),
        ("/setup", b"{}", 422, "project", "missing field 'project'"),
        ("/setup", b'{"project": "1.2", "schema": 7}', 422, "schema", "string or null"),
        ("/setup", b'{"project": "1.2", "hostname": 7}', 422, "hostname", "string or null"),
        ("/webhook", b"null", 400, None, "must be a JSON object"),
        ("/train", b'{"annotations": 3}', 422, "annotations", "must be a list"),
    ],
)
def test_bad_bodies_get_json_4xx_naming_the_field(serve, path, body, status, field, detail):
    client = serve(Echo)
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    payload = answer.json()
    assert payload.get("field") == field
    assert detail in payload["detail"]
    assert client.get("/health").status_code == 200


def test_bodies_over_the_limit_get_413(serve):
    client = serve(Echo, max_body_size=1000)
    big = b'{"tasks": [], "pad": "' + b"x" * 2000 + b'"}'
    answer = client.post("/predict", content=big)
    assert answer.status_code == 413
    assert answer.json()["error"] == "body_too_large"
    assert "RELAXML_MAX_BODY_SIZE" in answer.json()["detail"]


def test_streamed_bodies_over_the_limit_get_413(serve):
    client = serve(Echo, max_body_size=1000)

    def chunks():
        yield b'{"tasks": [], "pad": "'
        for _ in range(10):
            yield b"x" * 200
        yield b'"}'

    answer = client.post("/predict", content=chunks())
    assert answer.status_code == 413
    assert client.get("/health").status_code == 200


def test_the_default_limit_fits_a_large_retrieve(serve):
    client = serve(Echo)
    tasks = [
        {"id": i, "data": {"text": "x" * 500}, "annotations": [], "predictions": []}
        for i in range(20000)
    ]
    answer = client.post("/predict", json={"tasks": tasks})
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 20000


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("POST", "/predict/extra", 404, "not_found"),
        ("GET", "/predict", 405, "method_not_allowed"),
        ("DELETE", "/health", 405, "method_not_allowed"),
        ("PUT", "/webhook", 405, "method_not_allowed"),
    ],
)
def test_unknown_routes_and_methods_get_json(serve, method, path, status, code):
    answer = serve(Echo).request(method, path)
    assert answer.status_code == status
    assert answer.json()["error"] == code
    assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "path", "name", "body"),
    [
        ("GET", "/jobs", "list_jobs", None),
        ("POST", "/job_status", "job_status", {"job": "x"}),
        ("POST", "/delete", "delete", {"project": "1"}),
    ],
)
def test_get_and_post_routes_answer_a_relaxml_bug_alike(
    serve, monkeypatch, caplog, method, path, name, body
):
    def broken(*args: object) -> dict[str, object]:
        raise RuntimeError("a bug in relaxml")

    monkeypatch.setattr(routes, name, broken)
    client = serve(Echo)
    with caplog.at_level("ERROR", logger="relaxml"):
        answer = client.request(method, path, json=body)
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal_error", "detail": "RuntimeError: a bug in relaxml"}
    assert any(f"error on {path}" in r.getMessage() and r.exc_info for r in caplog.records)
    assert client.get("/health").json()["status"] == "UP"
