"""The reaper ends the processes that carry a command's mark, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from relaxml._ray.reaper import MARK, marked, reap, start_reaper, stop_reaper

SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_reap_ends_the_marked_processes_and_leaves_the_others() -> None:
    token = "test-" + os.urandom(4).hex()
    ours = subprocess.Popen(SLEEP, env={**os.environ, MARK: token})
    other = subprocess.Popen(SLEEP, env={**os.environ, MARK: "someone-else"})
    try:
        deadline = time.monotonic() + 10
        while ours.pid not in marked(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marked(token) == [ours.pid]
        assert reap(token, linger=0.3) == 1
        assert ours.wait(timeout=10) < 0  # killed
        assert other.poll() is None
    finally:
        for process in (ours, other):
            if process.poll() is None:
                process.kill()
            process.wait()


def test_a_command_that_ends_well_leaves_no_watcher_and_no_mark() -> None:
    watcher = start_reaper()
    assert watcher is not None
    assert MARK in os.environ
    token = os.environ[MARK]
    child = subprocess.Popen(SLEEP)  # started while marked: the command's own
    try:
        stop_reaper(watcher)  # one pass: the marked child is ended, then the watcher exits
        assert watcher.returncode == 0
        assert MARK not in os.environ
        assert child.wait(timeout=10) < 0
        assert marked(token) == []
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
