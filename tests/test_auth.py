"""Basic Auth covers every route; event webhooks, which Label Studio sends without it, follow
the `webhook_auth` setting."""

from __future__ import annotations

import base64

import pytest

from relaxml import Settings

from .conftest import first
from .support.models import Trainable

USER, PASSWORD = "mluser", "mlpass"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


GOOD = basic(USER, PASSWORD)

ROUTES = [
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/versions"),
    ("POST", "/setup"),
    ("POST", "/predict"),
    ("POST", "/train"),
    ("POST", "/job_status"),
    ("POST", "/validate"),
    ("POST", "/delete"),
    ("POST", "/duplicate_model"),
    ("GET", "/no-such-route"),
]


@pytest.fixture
def client(serve):
    return serve(Trainable, basic_auth_user=USER, basic_auth_pass=PASSWORD)


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        basic(USER, "wrong"),
        basic("wrong", PASSWORD),
        {"Authorization": "Basic !!!not-base64"},
        {"Authorization": f"Bearer {PASSWORD}"},
        {"Authorization": "Basic"},
    ],
)
def test_every_route_refuses_missing_or_wrong_credentials(client, method, path, headers):
    answer = client.request(method, path, headers=headers)
    assert answer.status_code == 401
    assert answer.json()["error"] == "unauthorized"
    assert answer.headers["www-authenticate"] == 'Basic realm="relaxml"'


def test_right_credentials_pass(client, captured):
    assert client.get("/health", headers=GOOD).status_code == 200
    setup = first(captured, "/setup")
    assert client.post("/setup", json=setup, headers=GOOD).status_code == 200
    predict = first(captured, "/predict")
    assert client.post("/predict", json=predict, headers=GOOD).status_code == 200


def test_captured_label_studio_basic_auth_headers_are_accepted(client, captured):
    """The exact headers Label Studio sent when set to BASIC_AUTH mluser/mlpass."""
    for request in captured:
        if "Authorization" in request["headers"]:
            answer = client.request(
                request["method"],
                request["path"],
                json=request["body"],
                headers={"Authorization": request["headers"]["Authorization"]},
            )
            assert answer.status_code == 200, (request["path"], answer.text)


def test_event_webhooks_without_credentials_are_accepted(client, captured):
    hook = first(captured, "/webhook", action="ANNOTATION_CREATED")
    answer = client.post("/webhook", json=hook)
    assert answer.status_code == 200
    assert answer.json()["status"] == "accepted"


def test_start_training_needs_credentials(client, captured):
    hook = first(captured, "/webhook", action="START_TRAINING")
    answer = client.post("/webhook", json=hook)
    assert answer.status_code == 401
    assert "START_TRAINING needs Basic Auth" in answer.json()["detail"]
    assert client.post("/webhook", json=hook, headers=GOOD).json()["status"] == "accepted"


def test_wrong_credentials_on_webhook_are_not_treated_as_valid(client, captured):
    hook = first(captured, "/webhook", action="START_TRAINING")
    answer = client.post("/webhook", json=hook, headers=basic(USER, "nope"))
    assert answer.status_code == 401


def test_strict_mode_refuses_unauthenticated_events(serve, captured):
    client = serve(Trainable, basic_auth_user=USER, basic_auth_pass=PASSWORD, webhook_auth="strict")
    hook = first(captured, "/webhook", action="ANNOTATION_CREATED")
    assert client.post("/webhook", json=hook).status_code == 401
    assert client.post("/webhook", json=hook, headers=GOOD).status_code == 200


def test_no_auth_configured_means_open(serve, captured):
    client = serve(Trainable)
    assert client.get("/health").status_code == 200
    hook = first(captured, "/webhook", action="START_TRAINING")
    assert client.post("/webhook", json=hook).json()["status"] == "accepted"


def test_auth_settings_need_both_parts():
    with pytest.raises(ValueError, match="needs both a user"):
        Settings(basic_auth_user="a")
    with pytest.raises(ValueError, match="needs both a user"):
        Settings(basic_auth_pass="a")


def test_auth_from_environment():
    env = {"RELAXML_BASIC_AUTH_USER": "u", "RELAXML_BASIC_AUTH_PASS": "s3cret-pass"}
    settings = Settings.from_env(env)
    assert settings.basic_auth == ("u", "s3cret-pass")
    assert "s3cret-pass" not in repr(settings)
