"""Settings: defaults, environment variables, overrides, and clear errors."""

from __future__ import annotations

import pytest

from relaxml import Settings
from relaxml.events import DEFAULT_TRAIN_ON


def test_defaults():
    settings = Settings()
    assert settings.basic_auth is None
    assert settings.max_concurrency == 1
    assert settings.max_body_size >= 256 * 1024 * 1024
    assert settings.train_on == DEFAULT_TRAIN_ON
    assert settings.webhook_auth == "events-open"


def test_environment_and_overrides():
    env = {
        "RELAXML_MAX_BODY_SIZE": "1000",
        "RELAXML_MAX_CONCURRENCY": "3",
        "RELAXML_TRAIN_ON": "START_TRAINING, ANNOTATION_CREATED",
        "RELAXML_WEBHOOK_AUTH": "strict",
        "RELAXML_MAX_QUEUE": "",
    }
    settings = Settings.from_env(env, max_concurrency=5)
    assert settings.max_body_size == 1000
    assert settings.max_concurrency == 5
    assert settings.train_on == {"START_TRAINING", "ANNOTATION_CREATED"}
    assert settings.webhook_auth == "strict"
    assert settings.max_queue == Settings().max_queue


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"RELAXML_MAX_BODY_SIZE": "big"}, "RELAXML_MAX_BODY_SIZE: expected an integer"),
        ({"RELAXML_MAX_CONCURRENCY": "0"}, "max_concurrency must be at least 1"),
        ({"RELAXML_WEBHOOK_AUTH": "open"}, "webhook_auth must be"),
        ({"RELAXML_MAX_QUEUE": "-1"}, "max_queue must be 0 or more"),
    ],
)
def test_bad_values_are_clear_errors(env, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env(env)


def test_every_setting_is_described():
    rows = Settings.describe()
    assert {row[0] for row in rows} == {
        "basic_auth_user",
        "basic_auth_pass",
        "webhook_auth",
        "max_body_size",
        "max_concurrency",
        "max_queue",
        "train_on",
        "delivery",
        "auto_inline_max",
        "data_dir",
        "label_studio_url",
        "label_studio_api_key",
        "train_every",
        "version_poll",
        "local_files_root",
        "media_max_bytes",
        "media_cache_bytes",
        "validate",
        "delivery_batch",
        "delivery_hold",
        "webhook_max_body_size",
        "max_queued_events",
        "max_queued_event_bytes",
        "devices",
        "max_projects",
        "max_loaded_models",
        "media_deadline",
        "exit_on_fatal",
    }
    for name, env, _default, doc in rows:
        assert env in ("RELAXML_" + name.upper(), name.upper(), "LOCAL_FILES_DOCUMENT_ROOT")
        assert doc
