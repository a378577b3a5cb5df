"""Every option of a relaxml app, with its default, its environment variable and its meaning.

`Settings()` holds the defaults; `Settings.from_env()` reads the `RELAXML_*` variables; the CLI
and `create_app(..., **overrides)` override either. Server options that only the CLI knows
(host, port, workers, reload, log level, app dir) are documented in `relaxml serve --help`.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields, replace
from typing import Any, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from ._devices import parse_devices
from .events import DEFAULT_TRAIN_ON

MiB = 1024 * 1024


def _setting(
    default: Any,
    env: str,
    doc: str,
    *,
    secret: bool = False,
    minimum: float | None = None,
    above: float | None = None,
    choices: tuple[str | None, ...] | None = None,
    url: bool = False,
) -> Any:
    """A setting: its environment variable, doc and checks (`__post_init__` applies them).

    The conversion from the environment and the type check follow the field's annotation
    (`int`, `float`, `bool`, `str`, `frozenset[str]`, each optionally `| None`); `minimum`
    (inclusive) and `above` (exclusive) bound numbers, `choices` lists the allowed values, and
    `url` requires an http(s) URL with a host.
    """
    meta = {
        "env": env,
        "doc": doc,
        "secret": secret,
        "minimum": minimum,
        "above": above,
        "choices": choices,
        "url": url,
    }
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
        choices=("events-open", "strict"),
    )
    max_body_size: int = _setting(
        512 * MiB,
        "RELAXML_MAX_BODY_SIZE",
        "Largest request body in bytes; larger ones get 413. A Retrieve Predictions of tens "
        "of thousands of tasks arrives as one request.",
        minimum=1,
    )
    max_concurrency: int = _setting(
        1,
        "RELAXML_MAX_CONCURRENCY",
        "How many predict calls may run at once in one process. 1 means the model need not "
        "be thread-safe.",
        minimum=1,
    )
    max_queue: int = _setting(
        256,
        "RELAXML_MAX_QUEUE",
        "How many prediction requests may wait for a slot; beyond that the answer is 503 "
        "with Retry-After.",
        minimum=0,
    )
    delivery: str | None = _setting(
        None,
        "RELAXML_DELIVERY",
        "How predictions reach Label Studio: 'inline' (in the /predict answer), 'background' "
        "(queued, then sent through Label Studio's API) or 'auto' (inline for small requests "
        "a person waits on, background for bulk). Unset: the model's `delivery` attribute.",
        choices=(None, "inline", "background", "auto"),
    )
    auto_inline_max: int = _setting(
        10,
        "RELAXML_AUTO_INLINE_MAX",
        "In 'auto' delivery, requests with at most this many tasks are answered inline.",
        minimum=0,
    )
    delivery_batch: int = _setting(
        5000,
        "RELAXML_DELIVERY_BATCH",
        "Most predictions sent to Label Studio in one bulk import. Label Studio recounts the "
        "project's tasks after each import, so fewer, larger imports are much faster.",
        minimum=1,
    )
    delivery_hold: float = _setting(
        5.0,
        "RELAXML_DELIVERY_HOLD",
        "Seconds a background job's predictions may wait to fill a full import while the job "
        "is still being predicted (0: send what is ready at once).",
        minimum=0,
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
        url=True,
    )
    label_studio_api_key: str | None = _setting(
        None,
        "LABEL_STUDIO_API_KEY",
        "A personal access token (or legacy token) for Label Studio's API. Without it, the "
        "project creator's legacy token from /setup is used, which Label Studio 1.23 refuses "
        "unless legacy tokens are enabled.",
        secret=True,
    )
    local_files_root: str | None = _setting(
        None,
        "LOCAL_FILES_DOCUMENT_ROOT",
        "Where Label Studio's LOCAL_FILES_DOCUMENT_ROOT is mounted here: local files are then "
        "read from disk instead of downloaded.",
    )
    media_max_bytes: int = _setting(
        512 * MiB,
        "RELAXML_MEDIA_MAX_BYTES",
        "Largest file `local_path` downloads, in bytes.",
        minimum=1,
    )
    media_cache_bytes: int = _setting(
        2048 * MiB,
        "RELAXML_MEDIA_CACHE_BYTES",
        "Size cap of the download cache (in the data directory's media/ folder), in bytes.",
        minimum=0,
    )
    validate: str = _setting(
        "warn",
        "RELAXML_VALIDATE",
        "Check each prediction against the project's label config (unknown names, types and "
        "labels, coordinates outside 0-100, missing original size): 'warn' logs each kind of "
        "problem once, 'error' answers 500, 'off' skips the check.",
        choices=("warn", "error", "off"),
    )
    train_every: int = _setting(
        1,
        "RELAXML_TRAIN_EVERY",
        "Annotation events (created, updated, deleted) needed to start a training run; "
        "START_TRAINING always starts one.",
        minimum=1,
    )
    version_poll: float = _setting(
        1.0,
        "RELAXML_VERSION_POLL",
        "Seconds between checks for a new current version (hot swap, rollback).",
        above=0,
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
        minimum=1,
    )
    max_queued_events: int = _setting(
        1000,
        "RELAXML_MAX_QUEUED_EVENTS",
        "Most training events kept waiting per project; beyond it the oldest are dropped "
        "(the run still happens, with the newer events).",
        minimum=1,
    )
    max_queued_event_bytes: int = _setting(
        64 * MiB,
        "RELAXML_MAX_QUEUED_EVENT_BYTES",
        "Most bytes of waiting training event payloads, all projects together; beyond it the "
        "oldest payloads are trimmed to their action and project (fit still runs, and "
        "`event.annotated_tasks()` still reads everything from Label Studio).",
        minimum=1,
    )
    max_projects: int = _setting(
        1000,
        "RELAXML_MAX_PROJECTS",
        "Most projects remembered in memory (from /setup and /predict); the least recently "
        "used is forgotten first and set up again on its next call.",
        minimum=1,
    )
    max_loaded_models: int = _setting(
        8,
        "RELAXML_MAX_LOADED_MODELS",
        "Most per-project model instances resident in one worker (a model with "
        "per_project = True); the least recently used is dropped first and built again, "
        "with its project's current version, when needed.",
        minimum=1,
    )
    media_deadline: float = _setting(
        300.0,
        "RELAXML_MEDIA_DEADLINE",
        "Seconds one media download may take in all, however steadily the server trickles "
        "bytes (each wait for data is limited separately, to 60 s).",
        above=0,
    )
    exit_on_fatal: bool = _setting(
        False,
        "RELAXML_EXIT_ON_FATAL",
        "When a background loop cannot go on (corrupt database, unwritable data directory, the "
        "same error 5 times in a row), /health answers 503 DOWN; with this on, the process "
        "also shuts down gracefully and exits with status 70 so that a supervisor restarts "
        "it. `relaxml serve` turns it on unless the variable says otherwise.",
    )
    devices: str | None = _setting(
        None,
        "RELAXML_DEVICES",
        "Comma-separated devices, e.g. 'cuda:0,cuda:1' or 'cpu': each worker process gets one, "
        "round-robin, as the model's `self.device`. Unset: 'cuda' when torch is installed and "
        "reports a GPU, else 'cpu'.",
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(f, getattr(self, f.name))
        if bool(self.basic_auth_user) != bool(self.basic_auth_pass):
            raise ValueError(
                "Basic Auth needs both a user (--basic-auth-user or RELAXML_BASIC_AUTH_USER) "
                "and a password (--basic-auth-pass or RELAXML_BASIC_AUTH_PASS)"
            )
        if self.label_studio_api_key and not self.label_studio_url:
            raise ValueError(
                "LABEL_STUDIO_API_KEY is set but LABEL_STUDIO_URL is not: set LABEL_STUDIO_URL "
                "to Label Studio's address (the key is only ever sent there)"
            )
        if self.devices is not None:
            try:
                parse_devices(self.devices)
            except ValueError as exc:
                raise ValueError(f"devices (RELAXML_DEVICES): {exc}") from None

    @property
    def device_list(self) -> tuple[str, ...]:
        """`devices` as a tuple, empty when unset."""
        return () if self.devices is None else parse_devices(self.devices)

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
                values[f.name] = _convert(f, raw)
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


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@functools.cache
def _hints() -> dict[str, Any]:
    return get_type_hints(Settings)


def _kind(f: Field[Any]) -> tuple[type, bool]:
    """The field's base type and whether None is allowed, from its annotation."""
    hint = _hints()[f.name]
    args = [a for a in get_args(hint) if a is not type(None)]
    optional = len(args) < len(get_args(hint))
    base = args[0] if optional and len(args) == 1 else hint
    return get_origin(base) or base, optional


def _convert(f: Field[Any], raw: str) -> Any:
    kind, _ = _kind(f)
    env = f.metadata["env"]
    if kind is frozenset:
        return frozenset(part.strip() for part in raw.split(",") if part.strip())
    if kind is bool:
        word = raw.strip().lower()
        if word not in _TRUE | _FALSE:
            raise ValueError(f"{env}: expected 1/0, true/false, yes/no or on/off, got {raw!r}")
        return word in _TRUE
    if kind is int:
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"{env}: expected an integer, got {raw!r}") from None
    if kind is float:
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{env}: expected a number, got {raw!r}") from None
    return raw


def _check(f: Field[Any], value: Any) -> None:
    """Refuse a value of the wrong type or out of range, naming the setting and its variable."""
    kind, optional = _kind(f)
    meta = f.metadata
    where = f"{f.name} ({meta['env']})"
    if value is None:
        if not optional:
            raise ValueError(f"{where} must be set")
        return
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{where} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
    elif kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"{where} must be an integer, got {value!r}")
    elif kind in (str, bool, frozenset) and not isinstance(value, kind):
        raise ValueError(f"{where} must be a {kind.__name__}, got {value!r}")
    minimum, above = meta["minimum"], meta["above"]
    if minimum is not None and value < minimum:
        bound = "0 or more" if minimum == 0 else f"at least {minimum}"
        raise ValueError(f"{f.name} must be {bound} ({meta['env']}), got {value!r}")
    if above is not None and value <= above:
        raise ValueError(f"{f.name} must be more than {above} ({meta['env']}), got {value!r}")
    choices = meta["choices"]
    if choices is not None and value not in choices:
        allowed = " or ".join(repr(c) for c in choices if c is not None)
        raise ValueError(f"{f.name} must be {allowed} ({meta['env']}), got {value!r}")
    if meta["url"]:
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"{where} must be an http:// or https:// URL with a host, got {value!r}"
            )
