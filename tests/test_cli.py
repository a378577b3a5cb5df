"""The `relaxml` command line, `relaxml._server.factory` and `python -m relaxml`.

In-process tests replace `uvicorn.run` with a recorder; the last tests start real servers.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.applications import Starlette
from starlette.testclient import TestClient

from relaxml import cli
from relaxml.__about__ import __version__
from relaxml._server.arenas import limit_malloc_arenas
from relaxml._server.collector import THRESHOLD, relax_collector
from relaxml._server.factory import app_from_env

from .conftest import wait_for

SQUIRREL = """\
from relaxml import LabelStudioModel


class Squirrel(LabelStudioModel):
    def predict(self, tasks, context):
        return [None for _ in tasks]


class Abstract(LabelStudioModel):
    pass


class Plain:
    pass


def helper():
    return Squirrel
"""

OPTIONS = {
    "--host": "RELAXML_HOST",
    "--port": "RELAXML_PORT",
    "--workers": "RELAXML_WORKERS",
    "--reload": "RELAXML_RELOAD",
    "--log-level": "RELAXML_LOG_LEVEL",
    "--app-dir": "RELAXML_APP_DIR",
    "--basic-auth-user": "RELAXML_BASIC_AUTH_USER",
    "--basic-auth-pass": "RELAXML_BASIC_AUTH_PASS",
}
MISSING_PACKAGE = "not_installed_pkg_xyz"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start without RELAXML_* variables and undo those the CLI sets in `os.environ`."""
    names = {name for name in os.environ if name.startswith("RELAXML_")}
    names |= {*OPTIONS.values(), "RELAXML_TARGET"}
    for name in names:
        monkeypatch.setenv(name, "")  # records the original value, or its absence, for undo
        monkeypatch.delenv(name)


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.fixture(autouse=True)
def served(
    monkeypatch: pytest.MonkeyPatch, python_collector: None
) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """The arguments of every `uvicorn.run` call `relaxml serve` makes; nothing is served (and
    the collector's thresholds it raises are put back afterwards)."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    # `--workers` hands settings to worker processes through os.environ: restore it afterwards
    # (a leaked RELAXML_DATA_DIR would send later tests' models to this test's directory).
    monkeypatch.setattr(os, "environ", os.environ.copy())
    return calls


@pytest.fixture
def model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a fresh module in the working directory that defines `Squirrel`."""
    root = tmp_path.resolve()
    name = f"squirrel_{uuid.uuid4().hex[:12]}"
    (root / f"{name}.py").write_text(SQUIRREL)
    monkeypatch.chdir(root)
    monkeypatch.setattr(sys, "path", sys.path[:])  # the loader adds the app dir to sys.path
    yield name
    sys.modules.pop(name, None)


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli.main, list(args), prog_name="relaxml")


def one_line(text: str) -> str:
    """`text` with every run of whitespace, line breaks included, turned into one space."""
    return " ".join(text.split())


# --version and --help


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag: str) -> None:
    result = invoke(flag)

    assert result.exit_code == 0
    assert result.output == f"relaxml, version {__version__}\n"


def test_python_m_relaxml_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "relaxml", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"relaxml, version {__version__}\n"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_main_help(flag: str) -> None:
    result = invoke(flag)

    assert result.exit_code == 0
    assert "serve" in result.output
    assert "TARGET" in result.output


def test_serve_help_shows_every_option_and_its_environment_variable() -> None:
    result = invoke("serve", "--help")

    assert result.exit_code == 0
    assert "TARGET" in result.output
    text = one_line(result.output)
    for option, variable in OPTIONS.items():
        assert option in text
        assert f"env var: {variable}" in text, f"{option} does not show {variable}"


# Mistakes on the command line: exit code 2, a one-line error, no traceback


def assert_usage_error(result: Result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "Error:" in result.output
    assert message in one_line(result.output)


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{model}:", 'Target "{model}:" must be "module:Class"'),
        (":Squirrel", 'Target ":Squirrel" must be "module:Class"'),
        ("no_such_module_xyz:Squirrel", 'Could not import module "no_such_module_xyz".'),
        ("missing.py:Squirrel", 'File "missing.py" does not exist.'),
        ("{model}:Missing", 'Attribute "Missing" not found in module "{model}".'),
        ("{model}:helper", '"{model}:helper" is the function helper, not a subclass'),
        ("{model}:Plain", '"{model}:Plain" is the class Plain, not a subclass'),
        ("{model}:Abstract", '"{model}:Abstract" is abstract: implement predict.'),
    ],
)
def test_bad_target(model: str, target: str, message: str) -> None:
    result = invoke("serve", target.format(model=model))

    assert_usage_error(result, message.format(model=model))


@pytest.mark.parametrize(
    ("line", "exception"),
    [
        (f"import {MISSING_PACKAGE}", ModuleNotFoundError),
        ("from os import not_a_name_xyz", ImportError),
    ],
)
def test_import_error_inside_the_model_is_not_a_usage_error(
    model: str, line: str, exception: type[ImportError]
) -> None:
    path = Path(f"{model}.py")
    path.write_text(SQUIRREL + line + "\n")

    result = invoke("serve", f"{model}:Squirrel")

    assert result.exit_code == 1
    assert type(result.exception) is exception
    assert result.exc_info is not None
    report = "".join(traceback.format_exception(*result.exc_info))
    assert str(path.resolve()) in report
    assert line in report


def test_import_error_inside_the_model_shows_its_traceback(model: str) -> None:
    Path(f"{model}.py").write_text(SQUIRREL + f"import {MISSING_PACKAGE}\n")

    result = subprocess.run(
        [sys.executable, "-m", "relaxml", "serve", f"{model}:Squirrel"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert f"ModuleNotFoundError: No module named '{MISSING_PACKAGE}'" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--reload", "--workers", "2"], {}, "--reload and --workers cannot be used together."),
        (["--reload"], {"RELAXML_WORKERS": "2"}, "--reload and --workers cannot be used together."),
        (["--basic-auth-user", "ls"], {}, "Basic Auth needs both a user (--basic-auth-user"),
        (["--basic-auth-pass", "s3cret"], {}, "Basic Auth needs both a user (--basic-auth-user"),
        (["--port", "70000"], {}, "70000 is not in the range 0<=x<=65535"),
        ([], {"RELAXML_PORT": "70000"}, "70000 is not in the range 0<=x<=65535"),
        (["--port", "http"], {}, "'http' is not a valid integer"),
        (["--workers", "0"], {}, "0 is not in the range x>=1"),
        (["--log-level", "loud"], {}, "'loud' is not one of 'critical', 'error'"),
        ([], {"RELAXML_MAX_QUEUE": "many"}, "expected an integer, got 'many'"),
    ],
)
def test_bad_option(
    model: str,
    monkeypatch: pytest.MonkeyPatch,
    served: list[Any],
    args: list[str],
    env: dict[str, str],
    message: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    result = invoke("serve", f"{model}:Squirrel", *args)

    assert_usage_error(result, message)
    assert served == []


# What `relaxml serve` hands to uvicorn


def test_serve_defaults(model: str, served: list[Any]) -> None:
    result = invoke("serve", f"{model}:Squirrel")

    assert result.exit_code == 0, result.output
    [(args, kwargs)] = served
    [app] = args
    assert isinstance(app, Starlette)
    assert kwargs == {
        "host": "0.0.0.0",
        "port": 9090,
        "log_config": None,
        "log_level": "info",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    assert gc.get_threshold()[0] == THRESHOLD  # relax_collector, after the model's module
    with TestClient(app) as client:
        assert client.get("/health").json()["model_class"] == "Squirrel"


def test_serve_with_options(model: str, served: list[Any]) -> None:
    result = invoke(
        "serve",
        f"{model}.py:Squirrel",
        "--host",
        "127.0.0.1",
        "--port",
        "9191",
        "--log-level",
        "debug",
        "--basic-auth-user",
        "ls",
        "--basic-auth-pass",
        "s3cret",
    )

    assert result.exit_code == 0, result.output
    [((app,), kwargs)] = served
    assert (kwargs["host"], kwargs["port"], kwargs["log_level"]) == ("127.0.0.1", 9191, "debug")
    with TestClient(app) as client:
        assert client.get("/health").status_code == 401
        assert client.get("/health", auth=("ls", "s3cret")).status_code == 200


def test_serve_with_workers_hands_uvicorn_an_import_string(
    model: str, tmp_path: Path, served: list[Any]
) -> None:
    result = invoke(
        "serve",
        f"{model}:Squirrel",
        "--workers",
        "2",
        "--log-level",
        "warning",
        "--basic-auth-user",
        "ls",
        "--basic-auth-pass",
        "s3cret",
    )

    assert result.exit_code == 0, result.output
    [(args, kwargs)] = served
    assert args == ("relaxml._server.factory:app_from_env",)
    assert kwargs["factory"] is True
    assert kwargs["workers"] == 2
    assert kwargs["reload"] is False
    assert kwargs["reload_dirs"] is None
    assert (kwargs["host"], kwargs["port"], kwargs["log_config"]) == ("0.0.0.0", 9090, None)
    # Each worker process rebuilds the app from these (relaxml._server.factory).
    assert os.environ["RELAXML_TARGET"] == f"{model}:Squirrel"
    assert os.environ["RELAXML_APP_DIR"] == str(tmp_path.resolve())
    assert os.environ["RELAXML_LOG_LEVEL"] == "warning"
    assert os.environ["RELAXML_BASIC_AUTH_USER"] == "ls"
    assert os.environ["RELAXML_BASIC_AUTH_PASS"] == "s3cret"


@pytest.mark.parametrize("as_file", [False, True], ids=["module", "file"])
def test_serve_with_reload_watches_the_model_folder(
    model: str, tmp_path: Path, served: list[Any], as_file: bool
) -> None:
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    Path(f"{model}.py").rename(app_dir / f"{model}.py")
    target = f"app/{model}.py:Squirrel" if as_file else f"{model}:Squirrel"

    result = invoke("serve", target, "--reload", "--app-dir", "app")

    assert result.exit_code == 0, result.output
    [(args, kwargs)] = served
    assert args == ("relaxml._server.factory:app_from_env",)
    assert (kwargs["reload"], kwargs["workers"]) == (True, 1)
    assert kwargs["reload_dirs"] == [str(app_dir.resolve())]


@pytest.mark.parametrize(
    ("variable", "value", "key", "expected"),
    [
        ("RELAXML_PORT", "9191", "port", 9191),
        ("RELAXML_HOST", "127.0.0.1", "host", "127.0.0.1"),
        ("RELAXML_LOG_LEVEL", "debug", "log_level", "debug"),
        ("RELAXML_WORKERS", "3", "workers", 3),
        ("RELAXML_RELOAD", "true", "reload", True),
    ],
)
def test_environment_variables(
    model: str,
    monkeypatch: pytest.MonkeyPatch,
    served: list[Any],
    variable: str,
    value: str,
    key: str,
    expected: object,
) -> None:
    monkeypatch.setenv(variable, value)

    result = invoke("serve", f"{model}:Squirrel")

    assert result.exit_code == 0, result.output
    [(_, kwargs)] = served
    assert kwargs[key] == expected


def test_app_dir_from_the_environment(
    model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: list[Any]
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the model module is no longer in the working directory
    monkeypatch.setenv("RELAXML_APP_DIR", str(tmp_path))

    result = invoke("serve", f"{model}:Squirrel")

    assert result.exit_code == 0, result.output
    assert len(served) == 1


def test_command_line_beats_environment(
    model: str, monkeypatch: pytest.MonkeyPatch, served: list[Any]
) -> None:
    monkeypatch.setenv("RELAXML_PORT", "9191")

    result = invoke("serve", f"{model}:Squirrel", "--port", "9292")

    assert result.exit_code == 0, result.output
    [(_, kwargs)] = served
    assert kwargs["port"] == 9292


# relaxml._server.factory: how worker processes build the app


@pytest.fixture
def python_collector() -> Iterator[None]:
    """Python's own collector thresholds during the test, and whatever they were after it."""
    before = gc.get_threshold()
    gc.set_threshold(700, *before[1:])
    yield
    gc.set_threshold(*before)


@pytest.mark.parametrize("as_file", [False, True], ids=["module", "file"])
def test_app_from_env(
    model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    as_file: bool,
    python_collector: None,
) -> None:
    monkeypatch.chdir(tmp_path.parent)  # not where the model is
    if as_file:
        monkeypatch.setenv("RELAXML_TARGET", f"{tmp_path / model}.py:Squirrel")
    else:
        monkeypatch.setenv("RELAXML_TARGET", f"{model}:Squirrel")
        monkeypatch.setenv("RELAXML_APP_DIR", str(tmp_path))
    monkeypatch.setenv("RELAXML_BASIC_AUTH_USER", "ls")
    monkeypatch.setenv("RELAXML_BASIC_AUTH_PASS", "s3cret")
    monkeypatch.setenv("RELAXML_DATA_DIR", str(tmp_path / "data"))  # one model per directory

    app = app_from_env()

    assert isinstance(app, Starlette)
    assert gc.get_threshold()[0] == THRESHOLD
    with TestClient(app) as client:
        assert client.get("/health").status_code == 401
        health = client.get("/health", auth=("ls", "s3cret")).json()
    assert health["model_class"] == "Squirrel"


# Real servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def server(cwd: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """Run `relaxml serve ARGS` in `cwd` with its output in a log file; stop it at the end.

    The server leads its own process group, so that if it ignores SIGTERM its workers can be
    killed with it.
    """
    log_path = cwd / f"server-{uuid.uuid4().hex[:8]}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "relaxml", "serve", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process, log_path
    finally:
        if process.poll() is None:
            process.terminate()  # SIGTERM to the server's own PID, as a process manager would
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the leader is not reaped: still our group
            process.wait()


def wait_for_health(process: subprocess.Popen[bytes], log_path: Path, port: int) -> Any:
    """Poll `GET /health` until it answers 200 and return its JSON."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            error.close()
        except OSError:  # not listening yet
            pass
        time.sleep(0.1)
    pytest.fail(f"no answer from /health within 30 s:\n{log_path.read_text()}")


@pytest.mark.parametrize("workers", [1, 2])
def test_real_server_answers_health(model: str, tmp_path: Path, workers: int) -> None:
    port = free_port()
    args = ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]

    with server(tmp_path, f"{model}.py:Squirrel", *args) as (process, log_path):
        health = wait_for_health(process, log_path, port)
        assert health["status"] == "UP"
        assert health["v2"] is True
        assert health["model_class"] == "Squirrel"
        # one worker may answer while the other still starts: stop them once both have started
        wait_for(lambda: log_path.read_text().count("Application startup complete.") == workers)
        process.terminate()
        # uvicorn re-raises SIGTERM after a graceful shutdown; its worker supervisor exits 0.
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)

    assert log_path.read_text().count("Application shutdown complete.") == workers
    assert not port_is_open(port)  # no worker outlived the server


def test_app_dir_must_exist(tmp_path):
    from click.testing import CliRunner

    from relaxml.cli import main

    result = CliRunner().invoke(
        main, ["serve", "x:Y", "--app-dir", str(tmp_path / "missing")], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_malloc_arenas_are_limited_unless_the_environment_says(monkeypatch):
    monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas() is glibc
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert limit_malloc_arenas() is False


def test_the_collector_is_relaxed_unless_someone_tuned_it(python_collector: None) -> None:
    older = gc.get_threshold()[1:]
    assert relax_collector() is True
    assert gc.get_threshold() == (THRESHOLD, *older)
    assert relax_collector() is False  # already changed: left alone
    gc.set_threshold(500, *older)  # the model's module chose its own
    assert relax_collector() is False
    assert gc.get_threshold()[0] == 500
    gc.set_threshold(700, *older)
    gc.disable()
    try:
        assert relax_collector() is False
    finally:
        gc.enable()
    assert gc.get_threshold()[0] == 700
