"""INFO by default, one line per request, and no secret in any log at any level."""

from __future__ import annotations

import base64
import contextlib
import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from relaxml import Context, LabelStudioModel, Task
from relaxml._redaction import redact, remember
from relaxml.logs import configure_logging, plain_handler

from .conftest import LOGGERS, first
from .support.models import Trainable

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIn0.c2lnbmF0dXJlLXZhbHVlLTEyMw"


@contextlib.contextmanager
def relaxml_handler_alone() -> Iterator[None]:
    """Only relaxml's handler on the root (pytest adds its own while a test runs)."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers = [h for h in saved if type(h).__module__ == "relaxml.logs"]
    try:
        yield
    finally:
        root.handlers = saved


class Leaky(LabelStudioModel):
    """A careless model that logs and raises with credentials in the text."""

    def predict(self, tasks: list[Task], context: Context) -> Any:
        log = logging.getLogger("user.model")
        log.info("fetching with headers {'Authorization': 'Token 0123456789abcdef0123'}")
        log.debug("refreshed: %s", JWT)
        raise RuntimeError(f"GET /data?token=abc123secret failed; password=hunter22secret {JWT}")


def test_secrets_never_reach_the_log(serve, captured, log_output):
    setup = first(captured, "/setup")
    predict = first(captured, "/predict")
    predict["params"] = {"login": "alice", "password": "hunter22secret", "context": None}
    hook = first(captured, "/webhook", action="ANNOTATION_CREATED")
    secrets = [
        setup["access_token"],
        hook["project"]["token"],
        "hunter22secret",
        "abc123secret",
        "0123456789abcdef0123",
        JWT,
        "mlpass",
        base64.b64encode(b"mluser:mlpass").decode(),
    ]
    auth = {"Authorization": "Basic " + base64.b64encode(b"mluser:mlpass").decode()}

    client = serve(Trainable, basic_auth_user="mluser", basic_auth_pass="mlpass")
    client.post("/setup", json=setup, headers=auth)
    client.post("/predict", json=predict, headers=auth)
    client.post("/webhook", json=hook)
    client.post("/predict", json=predict, headers={"Authorization": "Basic bWx1c2VyOndyb25n"})
    leaky = serve(Leaky)
    assert leaky.post("/predict", json=predict).status_code == 500

    text = log_output.getvalue()
    assert "Traceback" in text  # the full traceback is logged...
    assert "RuntimeError" in text
    for secret in secrets:  # ...but no credential is
        assert secret not in text, secret


BOTH_WAYS = pytest.mark.parametrize(
    "alone", [True, False], ids=["written without a record", "as records"]
)


@BOTH_WAYS
def test_one_concise_line_per_request(serve, log_output, alone):
    client = serve(Trainable)
    with relaxml_handler_alone() if alone else contextlib.nullcontext():
        client.get("/health")
        client.post("/predict", json={"tasks": [{"id": 1, "data": {}}, {"id": 2, "data": {}}]})
        client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1}})
    lines = [line for line in log_output.getvalue().splitlines() if "relaxml.access" in line]
    assert len(lines) == 3
    assert lines[0].endswith("GET /health 200 " + lines[0].rsplit(" 200 ", 1)[1])
    assert " POST /predict 200 " in lines[1]
    assert lines[1].endswith("ms (2 tasks)")
    assert lines[2].endswith("(ANNOTATION_CREATED)")


@BOTH_WAYS
def test_an_access_line_keeps_percent_signs_and_escapes_control_characters(
    serve, log_output, alone
):
    client = serve(Trainable)
    with relaxml_handler_alone() if alone else contextlib.nullcontext():
        assert client.get("/nowhere%25s%25d%0Aforged").status_code == 404
    lines = [line for line in log_output.getvalue().splitlines() if "relaxml.access" in line]
    assert len(lines) == 1
    assert " GET /nowhere%s%d\\nforged 404 " in lines[0]


def test_the_time_of_each_line_is_its_own(log_output):
    formatter = logging.getLogger().handlers[0].formatter  # configure_logging's
    assert formatter is not None
    records = []
    for created in (1_000.2, 1_000.9, 1_001.1, 4_600.0):
        record = logging.makeLogRecord({"msg": "m", "levelno": 20, "levelname": "INFO"})
        record.created = created
        records.append(formatter.format(record).split()[0])
    expected = [
        logging.Formatter(datefmt="%H:%M:%S").formatTime(
            logging.makeLogRecord({"created": created}), "%H:%M:%S"
        )
        for created in (1_000.2, 1_000.9, 1_001.1, 4_600.0)
    ]
    assert records == expected
    assert len(set(records)) == 3


@relaxml_handler_alone()
def test_an_access_line_written_without_a_record_is_the_records_text(log_output):
    access = logging.getLogger("relaxml.access")
    handler = plain_handler(access)
    assert handler is logging.getLogger().handlers[0]
    remember("s3cret-token-value-42")
    message = "POST /predict?t=s3cret-token-value-42 200 0.4 ms (x\x1b[31m 50% done)"
    handler.write_line(access.name, message)
    access.handle(access.makeRecord(access.name, logging.INFO, __file__, 0, message, (), None))
    fast, made = log_output.getvalue().splitlines()
    assert fast.split(" ", 1)[1] == made.split(" ", 1)[1]  # all but the time (its own second)
    assert "s3cret" not in fast
    assert "\x1b" not in fast
    assert (
        fast.split(" ", 1)[1]
        == "INFO    relaxml.access: POST /predict?t=[redacted] 200 0.4 ms (x\\x1b[31m 50% done)"
    )


@pytest.mark.parametrize(
    "change",
    [
        "a handler of the logger's own",
        "a filter on a parent",
        "a second handler on the root",
        "another formatter",
        "a filter on the handler",
        "WARNING and above",
    ],
)
@relaxml_handler_alone()
def test_anything_configured_beside_relaxml_gets_access_lines_as_records(log_output, change):
    access = logging.getLogger("relaxml.access")
    root_handler = logging.getLogger().handlers[0]
    undo: list[Any] = []
    if change == "a handler of the logger's own":
        extra = logging.NullHandler()
        access.addHandler(extra)
        undo.append(lambda: access.removeHandler(extra))
    elif change == "a filter on a parent":
        parent_filter = logging.Filter("nothing")
        logging.getLogger("relaxml").addFilter(parent_filter)
        undo.append(lambda: logging.getLogger("relaxml").removeFilter(parent_filter))
    elif change == "a second handler on the root":
        extra = logging.NullHandler()
        logging.getLogger().addHandler(extra)
        undo.append(lambda: logging.getLogger().removeHandler(extra))
    elif change == "another formatter":
        saved = root_handler.formatter
        root_handler.setFormatter(logging.Formatter("%(message)s"))
        undo.append(lambda: root_handler.setFormatter(saved))
    elif change == "a filter on the handler":
        handler_filter = logging.Filter()
        root_handler.addFilter(handler_filter)
        undo.append(lambda: root_handler.removeFilter(handler_filter))
    else:
        access.setLevel(logging.WARNING)
        undo.append(lambda: access.setLevel(logging.NOTSET))
    try:
        assert plain_handler(access) is None
    finally:
        for step in undo:
            step()
    assert plain_handler(access) is root_handler


def test_info_is_the_default_level():
    saved = [(lg, lg.handlers[:], lg.level) for lg in map(logging.getLogger, LOGGERS)]
    try:
        configure_logging(stream=io.StringIO())
        assert logging.getLogger().level == logging.INFO
        assert logging.getLogger("relaxml").getEffectiveLevel() == logging.INFO
    finally:
        for lg, handlers, level in saved:
            lg.handlers, lg.level = handlers, level
        for name in ("relaxml", "uvicorn", "uvicorn.error"):
            logging.getLogger(name).propagate = True
        logging.getLogger("uvicorn.access").disabled = False


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Token 0123456789abcdef", "0123456789abcdef"),
        ("{'authorization': 'Basic bWx1c2VyOm1scGFzcw=='}", "bWx1c2VyOm1scGFzcw"),
        ('{"access_token": "a1b2c3d4e5", "x": 1}', "a1b2c3d4e5"),
        ("password=hunter2&user=bob", "hunter2"),
        ("refresh: " + JWT, JWT),
        ("Bearer " + JWT, JWT),
        ("url?token=abc123", "abc123"),
        ("login ok, passwd: 'pa ss'", "pa ss"),
    ],
)
def test_redact(text, secret):
    clean = redact(text)
    assert secret not in clean
    assert "[redacted]" in clean


@pytest.mark.parametrize(
    "text",
    [
        "POST /predict 200 3.1 ms (12 tasks)",
        "missing or wrong Basic Auth credentials",
        "token refresh scheduled",
        "training run 3 succeeded in 1.2 s, version nb-4",
    ],
)
def test_redact_leaves_ordinary_text_alone(text):
    assert redact(text) == text
