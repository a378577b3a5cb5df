"""`start_reaper`: a command's own local Ray ends with the command, even when it is killed.

`ray.shutdown()` ends a local Ray when the command exits, and Ray makes the processes it starts
itself die with their parent. But a command killed outright (SIGKILL, the out-of-memory killer)
runs no code, and the agents the raylet starts in turn then linger for a minute or more. So,
before a local Ray starts, the command marks its environment (every Ray process inherits the
mark) and starts a small watcher in a session of its own; once the command is gone, however it
went, the watcher ends every process that still carries the mark, then exits. Linux only
(`/proc`); elsewhere Ray's own fate sharing is all there is.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

MARK = "RELAXML_RAY_OWNER"
"""The environment variable that marks the processes of one command's local Ray."""

DONE = b"done"
LINGER = 3.0
"""Seconds without a marked process the watcher waits for, after the command is gone, before it
exits (a process being started as the command died shows up late)."""

PATIENCE = 60.0
"""The longest the watcher keeps ending marked processes."""


def start_reaper() -> subprocess.Popen[bytes] | None:
    """Mark this process's environment and start the watcher; None where there is no `/proc`."""
    if not Path("/proc/self/environ").exists():
        return None
    token = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if k != MARK}
    watcher = subprocess.Popen(
        [sys.executable, "-m", "relaxml._ray.reaper", token, str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # a Ctrl-C of the command's terminal does not reach it
    )
    os.environ[MARK] = token
    return watcher


def stop_reaper(watcher: subprocess.Popen[bytes]) -> None:
    """The command ends well (its Ray shut down): the watcher checks once and exits."""
    os.environ.pop(MARK, None)
    assert watcher.stdin is not None
    with contextlib.suppress(OSError):
        watcher.stdin.write(DONE)
        watcher.stdin.close()
    try:
        watcher.wait(timeout=PATIENCE + 5)
    except subprocess.TimeoutExpired:
        watcher.kill()
        watcher.wait()


def marked(token: str, spare: int = 0) -> list[int]:
    """The processes whose environment carries `MARK=token`, this one and `spare` left out."""
    wanted = f"{MARK}={token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in (os.getpid(), spare):
            continue
        with contextlib.suppress(OSError):
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
    return found


def reap(token: str, linger: float = LINGER, patience: float = PATIENCE, spare: int = 0) -> int:
    """End every process marked with `token` until none has been seen for `linger` seconds
    (processes still starting), at most `patience` seconds in all, never `spare` (the
    command, alive when it ends well); how many were ended."""
    ended: set[int] = set()
    start = quiet = time.monotonic()
    while True:
        found = marked(token, spare)
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
                ended.add(pid)
        now = time.monotonic()
        if found:
            quiet = now
        if now - quiet >= linger or now - start >= patience:
            return len(ended)
        time.sleep(0.2)


def main() -> None:
    """The watcher: wait until the command's end closes stdin, then reap its mark (once, when
    the command said it ended well; for `LINGER` seconds when it was killed)."""
    token, command = sys.argv[1], int(sys.argv[2])
    said = b""
    with contextlib.suppress(OSError):
        while chunk := sys.stdin.buffer.read(4096):
            said += chunk
    reap(token, linger=0.0 if said == DONE else LINGER, spare=command)


if __name__ == "__main__":
    main()
