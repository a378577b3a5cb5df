"""`relaxml serve --engine ray` in a subprocess, and every process of the Ray it started.

Each run gets its own Ray temporary directory (`RAY_TMPDIR`), which every process of its Ray
inherits in its environment: `ray_processes` finds them by it, wherever they were reparented,
and never matches a process of another Ray on the machine.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from .processes import LOOPBACK, free_port, tail

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 90.0


def ray_processes(marker: str) -> dict[int, str]:
    """Live processes whose environment holds `RAY_TMPDIR=<marker>`: pid → command line."""
    wanted = f"RAY_TMPDIR={marker}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if wanted in environ.split(b"\0") and state != "Z":
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


class RayServe:
    """One `relaxml serve --engine ray` command, its log, its port and its Ray's processes."""

    def __init__(
        self, target: str, options: Sequence[str], env: Mapping[str, str], log_path: Path
    ) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.log_path = log_path
        # Short: Ray's socket paths under it must fit in 107 bytes.
        self.ray_tmpdir = tempfile.mkdtemp(prefix="rs")
        argv = [sys.executable, "-m", "relaxml", "serve", target, "--engine", "ray"]
        argv += ["--host", LOOPBACK, "--port", str(self.port), *options]
        child_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RAY_TMPDIR": self.ray_tmpdir,
            "RAY_USAGE_STATS_ENABLED": "0",
            **env,
        }
        child_env.pop("RAY_ADDRESS", None)
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=ROOT, env=child_env, stdout=log, stderr=subprocess.STDOUT
            )

    def log(self) -> str:
        """The command's output so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_serving(self, auth: tuple[str, str] | None = None) -> None:
        """Return once the command says it serves (every replica started: until then Serve's
        proxy may answer the port with its own plain-text 404 or 503) and `/health` gives
        relaxml's JSON; fail with the log's tail if the command exits."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"exited {self.process.returncode}:\n{tail(self.log_path)}")
            if " on Ray at " in self.log():
                try:
                    answer = requests.get(self.url + "/health", auth=auth, timeout=2)
                    if answer.status_code == 200 and "worker" in answer.json():
                        return
                except (requests.RequestException, ValueError):
                    pass
            time.sleep(0.5)
        raise AssertionError(f"not serving after {START_TIMEOUT} s:\n{tail(self.log_path)}")

    def processes(self) -> dict[int, str]:
        """The live processes of this command's Ray."""
        return ray_processes(self.ray_tmpdir)

    def stop(self, timeout: float = 60.0) -> tuple[int, dict[int, str]]:
        """SIGTERM the command (only it), wait for it; return its exit status and the Ray
        processes still alive a moment later (each then killed, so none is left behind)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            status = self.process.wait()
        return status, self.leftovers()

    def leftovers(self) -> dict[int, str]:
        """Ray processes alive after the command exited (killed, by pid, once listed)."""
        time.sleep(1.0)
        left = self.processes()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.ray_tmpdir, ignore_errors=True)
        return left
