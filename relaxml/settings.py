"""Every option of a relaxml app, with its default, its environment variable and its meaning.

`Settings()` holds the defaults; `Settings.from_env()` reads the `RELAXML_*` variables; the CLI
and `create_app(..., **overrides)` override either. Server options that only the CLI knows
(host, port, workers, reload, log level, app dir) are documented in `relaxml serve --help`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from .events import DEFAULT_TRAIN_ON

MiB = 1024 * 1024


def _setting(default: Any, env: str, doc: str, *, secret: bool = False) -> Any:
    meta = {"env": env, "doc": doc, "secret": secret}
    if isinstance(default, (frozenset, list, dict)):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Settings:
    """The options of one relaxml app."""

    basic_auth_user: str | None = _setting(
        None,
        "RELAXML_BASIC_AUTH_USER",
        "Basic Auth user name. With a password, every route requires these credentials.",
    )
    basic_auth_pass: str | None = _setting(
        None, "RELAXML_BASIC_AUTH_PASS", "Basic Auth password.", secret=True
    )
    webhook_auth: str = _setting(
        "events-open",
        "RELAXML_WEBHOOK_AUTH",
        "With Basic Auth on: 'events-open' accepts Label Studio's event webhooks, which it "
        "sends without credentials, while START_TRAINING still needs them; 'strict' refuses "
        "every /webhook call without credentials.",
    )
    max_body_size: int = _setting(
        512 * MiB,
        "RELAXML_MAX_BODY_SIZE",
        "Largest request body in bytes; larger ones get 413. A Retrieve Predictions of tens "
        "of thousands of tasks arrives as one request.",
    )
    max_concurrency: int = _setting(
        1,
        "RELAXML_MAX_CONCURRENCY",
        "How many predict calls may run at once in one process. 1 means the model need not "
        "be thread-safe.",
    )
    max_queue: int = _setting(
        256,
        "RELAXML_MAX_QUEUE",
        "How many prediction requests may wait for a slot; beyond that the answer is 503 "
        "with Retry-After.",
    )
    delivery: str | None = _setting(
        None,
        "RELAXML_DELIVERY",
        "How predictions reach Label Studio: 'inline' (in the /predict answer), 'background' "
        "(queued, then sent through Label Studio's API) or 'auto' (inline for small requests "
        "a person waits on, background for bulk). Unset: the model's `delivery` attribute.",
    )
    auto_inline_max: int = _setting(
        10,
        "RELAXML_AUTO_INLINE_MAX",
        "In 'auto' delivery, requests with at most this many tasks are answered inline.",
    )
    delivery_batch: int = _setting(
        5000,
        "RELAXML_DELIVERY_BATCH",
        "Most predictions sent to Label Studio in one bulk import. Label Studio recounts the "
        "project's tasks after each import, so fewer, larger imports are much faster.",
    )
    data_dir: str = _setting(
        "relaxml-data",
        "RELAXML_DATA_DIR",
        "Directory of the outbox database and other state (relative to the working directory).",
    )
    label_studio_url: str | None = _setting(
        None,
        "LABEL_STUDIO_URL",
        "Label Studio's URL for API calls; overrides the `hostname` Label Studio sends in /setup "
        "(which may be http://localhost:8080, unreachable from a container).",
    )
    label_studio_api_key: str | None = _setting(
        None,
        "LABEL_STUDIO_API_KEY",
        "A personal access token (or legacy token) for Label Studio's API; needs "
        "LABEL_STUDIO_URL, the only place it is sent. Without it, the project creator's legacy "
        "token from /setup is used (sent only to the hostname of that /setup), which Label "
        "Studio 1.23 refuses unless legacy tokens are enabled.",
        secret=True,
    )
    local_files_root: str | None = _setting(
        None,
        "LOCAL_FILES_DOCUMENT_ROOT",
        "Where Label Studio's LOCAL_FILES_DOCUMENT_ROOT is mounted here: local files are then "
        "read from disk instead of downloaded.",
    )
    media_max_bytes: int = _setting(
        512 * MiB, "RELAXML_MEDIA_MAX_BYTES", "Largest file `local_path` downloads, in bytes."
    )
    media_cache_bytes: int = _setting(
        2048 * MiB,
        "RELAXML_MEDIA_CACHE_BYTES",
        "Size cap of the download cache (in the data directory's media/ folder), in bytes.",
    )
    validate: str = _setting(
        "warn",
        "RELAXML_VALIDATE",
        "Check each prediction against the project's label config (unknown names, types and "
        "labels, coordinates outside 0-100, missing original size): 'warn' logs each kind of "
        "problem once, 'error' answers 500, 'off' skips the check.",
    )
    train_every: int = _setting(
        1,
        "RELAXML_TRAIN_EVERY",
        "Annotation events (created, updated, deleted) needed to start a training run; "
        "START_TRAINING always starts one.",
    )
    version_poll: float = _setting(
        1.0,
        "RELAXML_VERSION_POLL",
        "Seconds between checks for a new current version (hot swap, rollback).",
    )
    train_on: frozenset[str] = _setting(
        DEFAULT_TRAIN_ON,
        "RELAXML_TRAIN_ON",
        "Comma-separated webhook actions that run fit.",
    )
    webhook_max_body_size: int = _setting(
        1 * MiB,
        "RELAXML_WEBHOOK_MAX_BODY_SIZE",
        "Largest /webhook body in bytes; larger ones get 413 before they are read whole. "
        "Label Studio's event webhooks are a few KiB. The legacy /train keeps "
        "RELAXML_MAX_BODY_SIZE.",
    )
    max_queued_events: int = _setting(
        1000,
        "RELAXML_MAX_QUEUED_EVENTS",
        "Most training events kept waiting per project; beyond it the oldest are dropped "
        "(the run still happens, with the newer events).",
    )
    max_queued_event_bytes: int = _setting(
        64 * MiB,
        "RELAXML_MAX_QUEUED_EVENT_BYTES",
        "Most bytes of waiting training event payloads, all projects together; beyond it the "
        "oldest payloads are trimmed to their action and project (fit still runs, and "
        "`event.annotated_tasks()` still reads everything from Label Studio).",
    )
    max_projects: int = _setting(
        1000,
        "RELAXML_MAX_PROJECTS",
        "Most projects remembered in memory (from /setup and /predict); the least recently "
        "used is forgotten first and set up again on its next call.",
    )
    media_deadline: float = _setting(
        300.0,
        "RELAXML_MEDIA_DEADLINE",
        "Seconds one media download may take in all, however steadily the server trickles "
        "bytes (each wait for data is limited separately, to 60 s).",
    )

    def __post_init__(self) -> None:
        if self.webhook_auth not in ("events-open", "strict"):
            raise ValueError("webhook_auth must be 'events-open' or 'strict'")
        for name in ("max_body_size", "max_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.delivery not in (None, "inline", "background", "auto"):
            raise ValueError("delivery must be 'inline', 'background' or 'auto'")
        if self.validate not in ("warn", "error", "off"):
            raise ValueError("validate must be 'warn', 'error' or 'off'")
        if self.delivery_batch < 1:
            raise ValueError("delivery_batch must be at least 1")
        if self.train_every < 1:
            raise ValueError("train_every must be at least 1")
        if self.version_poll <= 0:
            raise ValueError("version_poll must be more than 0")
        if self.auto_inline_max < 0:
            raise ValueError("auto_inline_max must be 0 or more")
        if self.max_queue < 0:
            raise ValueError("max_queue must be 0 or more")
        if self.label_studio_api_key and not self.label_studio_url:
            raise ValueError(
                "LABEL_STUDIO_API_KEY is set but LABEL_STUDIO_URL is not: set LABEL_STUDIO_URL "
                "to Label Studio's address (the key is only ever sent there)"
            )
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ValueError(
                "Basic Auth needs both a user (--basic-auth-user or RELAXML_BASIC_AUTH_USER) "
                "and a password (--basic-auth-pass or RELAXML_BASIC_AUTH_PASS)"
            )
        _check_limits(self)

    @property
    def basic_auth(self) -> tuple[str, str] | None:
        """The Basic Auth credentials, or None when auth is off."""
        if self.basic_auth_user and self.basic_auth_pass:
            return self.basic_auth_user, self.basic_auth_pass
        return None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then `RELAXML_*` environment variables, then `overrides`."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _convert(f.name, f.metadata["env"], raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with the given options changed (None leaves an option as it is)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def describe(cls) -> list[tuple[str, str, str, str]]:
        """(name, env var, default, doc) for every option, for docs and `--help`."""
        rows = []
        for f in fields(cls):
            default = f.default if not callable(f.default_factory) else f.default_factory()
            if isinstance(default, frozenset):
                default = ",".join(sorted(default))
            rows.append((f.name, f.metadata["env"], repr(default), f.metadata["doc"]))
        return rows


def _check_limits(settings: Settings) -> None:
    """The request, queue, cache and download limits: whole numbers at least 1, or seconds."""
    for name in _LIMITS:
        value = getattr(settings, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            env = _env_of(name)
            raise ValueError(f"{name} ({env}) must be a whole number of at least 1, got {value!r}")
    deadline = settings.media_deadline
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        raise ValueError(
            f"media_deadline (RELAXML_MEDIA_DEADLINE) must be seconds, got {deadline!r}"
        )
    if not math.isfinite(deadline) or deadline <= 0:
        raise ValueError(
            f"media_deadline (RELAXML_MEDIA_DEADLINE) must be a finite number of seconds above 0, "
            f"got {deadline!r}"
        )


_LIMITS = ("webhook_max_body_size", "max_queued_events", "max_queued_event_bytes", "max_projects")


def _env_of(name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == name))


def _convert(name: str, env: str, raw: str) -> Any:
    if name in _LIMITS:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env}: expected an integer, got {raw!r}") from None
    if name == "media_deadline":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{env}: expected a number of seconds, got {raw!r}") from None
    if name == "train_on":
        return frozenset(part.strip() for part in raw.split(",") if part.strip())
    if name == "version_poll":
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{env}: expected a number, got {raw!r}") from None
    if name in (
        "max_body_size",
        "max_concurrency",
        "max_queue",
        "auto_inline_max",
        "delivery_batch",
        "train_every",
        "media_max_bytes",
        "media_cache_bytes",
    ):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env}: expected an integer, got {raw!r}") from None
    return raw
