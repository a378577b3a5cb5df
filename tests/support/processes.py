"""Start, watch and stop server subprocesses (ML backends, Label Studio) for end-to-end tests.

Every process is started in its own session, so it leads its own process group. Signals go to
that group only, and only while the group leader has not been reaped, so its id cannot have
been reused by a process this module did not start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol

import requests

LOOPBACK = "127.0.0.1"
BACKEND_START_TIMEOUT = 60.0
STOP_GRACE_PERIOD = 10.0


class ProcessStartError(RuntimeError):
    """A server subprocess exited or did not become healthy in time."""


def free_port() -> int:
    """Return a loopback TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_listening(port: int) -> bool:
    """Tell whether something accepts TCP connections on the loopback `port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex((LOOPBACK, port)) == 0


def tail(path: Path, lines: int = 40) -> str:
    """Return the last `lines` lines of the text file at `path` (empty if it does not exist)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def spawn(
    argv: Sequence[str], env: Mapping[str, str], log_path: Path, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` in a new session with stdout and stderr appended to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )


def signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    """Send `signum` to the process group led by `process`, unless the leader was already reaped."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def terminate(process: subprocess.Popen[bytes], grace_period: float = STOP_GRACE_PERIOD) -> int:
    """SIGTERM the group of `process`, SIGKILL it after `grace_period` s; return the exit code."""
    signal_group(process, signal.SIGTERM)
    try:
        return process.wait(grace_period)
    except subprocess.TimeoutExpired:
        signal_group(process, signal.SIGKILL)
        return process.wait()


def merged_environment(overrides: Mapping[str, str | None]) -> dict[str, str]:
    """Return a copy of `os.environ` updated with `overrides`; None removes a variable."""
    env = dict(os.environ)
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


class BackendProcess:
    """A running ML backend subprocess listening on a loopback port."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.log_path = log_path
        self.url = f"http://{LOOPBACK}:{port}"

    @property
    def pid(self) -> int:
        """The process id (also the process group id) of the backend."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """Whether the backend process has not exited yet."""
        return self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the backend's combined stdout and stderr."""
        return tail(self.log_path, lines)

    def stop(self, grace_period: float = STOP_GRACE_PERIOD) -> int:
        """SIGTERM the backend, SIGKILL it after `grace_period` s; return its exit code."""
        return terminate(self.process, grace_period)

    def kill(self) -> int:
        """Kill the backend with SIGKILL at once; return its exit code."""
        signal_group(self.process, signal.SIGKILL)
        return self.process.wait()


def wait_until_healthy(backend: BackendProcess, timeout: float = BACKEND_START_TIMEOUT) -> None:
    """Poll `GET {backend.url}/health` until it answers, or raise `ProcessStartError`.

    200 means up; so does 401, the answer of a backend behind Basic Auth.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not backend.running:
            raise ProcessStartError(
                f"backend exited with code {backend.process.returncode} before answering /health; "
                f"last lines of {backend.log_path}:\n{backend.log_tail()}"
            )
        try:
            if requests.get(f"{backend.url}/health", timeout=2.0).status_code in (200, 401):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise ProcessStartError(
        f"backend did not answer 200 on {backend.url}/health within {timeout:.0f} s; "
        f"last lines of {backend.log_path}:\n{backend.log_tail()}"
    )


def run_backend(
    argv: Sequence[str],
    env: Mapping[str, str | None],
    port: int,
    log_path: Path,
    timeout: float = BACKEND_START_TIMEOUT,
) -> BackendProcess:
    """Start an ML backend and wait until `http://127.0.0.1:{port}/health` answers 200.

    `env` is applied on top of the current environment (None removes a variable). The backend's
    stdout and stderr go to `log_path`. On failure the process is stopped and `ProcessStartError`
    carries the tail of its log.
    """
    if port_is_listening(port):
        raise ProcessStartError(f"port {port} is already in use")
    backend = BackendProcess(spawn(argv, merged_environment(env), log_path), port, log_path)
    try:
        wait_until_healthy(backend, timeout)
    except BaseException:
        backend.stop()
        raise
    return backend


class BackendFactory(Protocol):
    """The callable behind the `backend_factory` fixture."""

    def __call__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str | None],
        port: int,
        log_path: Path | None = None,
    ) -> BackendProcess:
        """Start a backend like `run_backend`; the fixture stops it when the test ends."""
        ...
