"""Shared helpers: server processes on loopback, health checks, CPU pinning and memory.

Every server runs as a real process in its own session, so stopping it (by its PID, as a
process group whose leader we started) also stops the workers it forked.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the servers and the load generator may use.

    On a machine with two or more CPUs the server gets the first and the load generator the
    last, so they do not compete for one core; on one CPU nothing is pinned.
    """

    server: tuple[int, ...] | None
    client: tuple[int, ...] | None

    @classmethod
    def detect(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2 or shutil.which("taskset") is None:
            return cls(server=None, client=None)
        return cls(server=(cpus[0],), client=(cpus[-1],))

    def describe(self) -> str:
        if self.server is None or self.client is None:
            return "not pinned (one CPU, or no taskset)"
        return f"server on CPU {_cpus(self.server)}, load generator on CPU {_cpus(self.client)}"


def _cpus(cpus: tuple[int, ...]) -> str:
    return ",".join(map(str, cpus))


def pinned(argv: list[str], cpus: tuple[int, ...] | None) -> list[str]:
    """`argv` prefixed with `taskset` so that it runs on `cpus` (unchanged when None)."""
    if cpus is None:
        return argv
    return ["taskset", "-c", _cpus(cpus), *argv]


@dataclass
class ServerSpec:
    """How to start one server: the command (with `{port}` placeholders), its env and cwd."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path = REPO_DIR

    def display(self) -> str:
        """The command as a reader would type it: no machine-specific absolute paths."""
        words = []
        for arg in self.argv:
            path = Path(arg)
            if arg == sys.executable:
                words.append("python")
            elif path.is_absolute() and path.is_relative_to(REPO_DIR):
                words.append(str(path.relative_to(REPO_DIR)))
            elif path.is_absolute():
                words.append(path.name)
            else:
                words.append(arg.replace("{host}", HOST).replace("{port}", "PORT"))
        return " ".join(words)


@dataclass
class Server:
    """A running server process."""

    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    started_at: float

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"


def start_server(spec: ServerSpec, log_dir: Path, cpus: tuple[int, ...] | None) -> Server:
    """Start `spec` on a free loopback port; its output goes to a log file in `log_dir`."""
    port = free_port()
    argv = pinned([arg.format(port=port, host=HOST) for arg in spec.argv], cpus)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **spec.env}
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{spec.name}-{port}.log"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            argv,
            cwd=spec.cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Server(spec, port, process, log_path, started)


def health_ok(port: int, timeout: float = 1.0) -> bool:
    """True when GET /health on `port` answers 200."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        response.read()
        return response.status == 200
    except OSError:
        return False
    finally:
        conn.close()


def wait_healthy(server: Server, timeout: float = 60.0, interval: float = 0.005) -> float:
    """Poll /health until it answers 200; return seconds since the process was started."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.spec.name} exited with {server.process.returncode} before it was "
                f"healthy; its log:\n{tail(server.log_path)}"
            )
        if health_ok(server.port, timeout=1.0):
            return time.perf_counter() - server.started_at
        time.sleep(interval)
    raise RuntimeError(
        f"{server.spec.name} was not healthy after {timeout:.0f} s; its log:\n"
        f"{tail(server.log_path)}"
    )


def stop_server(server: Server, grace: float = 10.0) -> None:
    """Stop the server we started: SIGTERM to its process group, SIGKILL after `grace`."""
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)
            server.process.wait(timeout=grace)
    # Workers a server forked leave with it; make sure none outlived their leader.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)


@contextlib.contextmanager
def running(
    spec: ServerSpec, log_dir: Path, cpus: tuple[int, ...] | None, timeout: float = 60.0
) -> Iterator[Server]:
    """Start `spec`, wait until it is healthy, and stop it on the way out."""
    server = start_server(spec, log_dir, cpus)
    try:
        wait_healthy(server, timeout)
        yield server
    finally:
        stop_server(server)


def tail(path: Path, lines: int = 30) -> str:
    """The last `lines` lines of a text file (empty when it does not exist)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo.extend(children.get(current, []))
    return tree


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    """Memory of a process tree in MiB: resident now, the resident high-water mark, and PSS."""

    processes: int
    rss_mib: float
    hwm_mib: float
    pss_mib: float


def memory_of(pid: int) -> Memory:
    """Sum VmRSS, VmHWM and PSS over the tree of `pid`.

    Summing RSS counts pages that forked processes share once per process; PSS splits them.
    The summed VmHWM is an upper bound on the tree's peak (each process's own peak, added).
    """
    server_tree = process_tree(pid)  # taskset execs the server: no process of its own
    kib = 1024.0
    return Memory(
        processes=len(server_tree),
        rss_mib=sum(_status_kib(p, "VmRSS") for p in server_tree) / kib,
        hwm_mib=sum(_status_kib(p, "VmHWM") for p in server_tree) / kib,
        pss_mib=sum(_pss_kib(p) for p in server_tree) / kib,
    )


def python() -> str:
    """The interpreter running the suite (the one with relaxml installed)."""
    return sys.executable


def rounded(value: float | None, digits: int = 2) -> float | None:
    """`value` rounded for the results file (None stays None)."""
    return None if value is None else round(value, digits)
