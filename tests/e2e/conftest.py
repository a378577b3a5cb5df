"""Fixtures for end-to-end tests: a session-wide Label Studio, free ports, backend processes.

`RELAXML_E2E` controls what happens when Label Studio is unavailable: unset (or `auto`) skips the
tests that need it, `require` fails them, `skip` skips them without trying to install or start it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from ..support import processes
from ..support.labelstudio import LabelStudio, LabelStudioError, find_or_install_label_studio
from ..support.processes import BackendFactory, BackendProcess, run_backend

E2E_DIR = Path(__file__).resolve().parent
E2E_MODES = ("auto", "skip", "require")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under this directory `e2e` (before `-m` selection runs)."""
    for item in items:
        if E2E_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


def e2e_mode() -> str:
    """Return the `RELAXML_E2E` mode: `auto` (default), `skip` or `require`."""
    mode = os.environ.get("RELAXML_E2E", "").strip().lower() or "auto"
    if mode not in E2E_MODES:
        raise pytest.UsageError(f"RELAXML_E2E must be one of {', '.join(E2E_MODES)}, not {mode!r}")
    return mode


def unavailable(reason: str) -> BaseException:
    """Return what to raise when Label Studio is unavailable: a failure or a skip."""
    if e2e_mode() == "require":
        return pytest.fail.Exception(reason, pytrace=False)
    return pytest.skip.Exception(reason)


def announce(config: pytest.Config, message: str) -> None:
    """Write a progress line to the terminal even while output is captured."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        sys.stderr.write(f"[relaxml e2e] {message}\n")
        return
    with capture.global_and_fixture_disabled():
        sys.stderr.write(f"\n[relaxml e2e] {message}\n")
        sys.stderr.flush()


@pytest.fixture(scope="session")
def label_studio(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabelStudio]:
    """One real Label Studio for the session, on a free loopback port with a fresh data dir."""
    if e2e_mode() == "skip":
        pytest.skip("RELAXML_E2E=skip")
    config = request.config
    try:
        executable = find_or_install_label_studio(
            progress=lambda message: announce(config, message)
        )
        server = LabelStudio(
            executable, tmp_path_factory.mktemp("label-studio"), processes.free_port()
        )
        server.start()
    except (LabelStudioError, OSError) as error:
        raise unavailable(f"Label Studio is not available: {error}") from None
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    return processes.free_port()


@pytest.fixture
def backend_factory(tmp_path: Path) -> Iterator[BackendFactory]:
    """Start ML backend processes with `run_backend`; all of them are stopped when the test ends.

    Each gets its own `RELAXML_DATA_DIR` under the test's tmp_path unless `env` names one.
    """
    started: list[BackendProcess] = []

    def start(
        argv: Sequence[str],
        env: Mapping[str, str | None],
        port: int,
        log_path: Path | None = None,
    ) -> BackendProcess:
        number = len(started) + 1
        # A fresh data directory per backend unless the test shares one on purpose.
        env = {"RELAXML_DATA_DIR": str(tmp_path / f"data-{number}"), **env}
        backend = run_backend(argv, env, port, log_path or tmp_path / f"backend-{number}.log")
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.stop()
