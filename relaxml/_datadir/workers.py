"""`WorkerSlots`: which worker a process is (for its device), and how many are ready.

Each worker process of `relaxml serve --workers N` holds an exclusive lock on
`workers/slot-<i>.lock` in the data directory, the lowest free `i`: the first worker to start is
slot 0, and a worker that replaces a dead one takes its slot (and so its device). Once its model
has loaded and warmed up, it also locks `workers/ready-<i>.lock`. `/ready` counts the ready
locks that are held. The operating system drops a lock when its holder dies, even by SIGKILL,
so a dead worker is neither counted nor keeps its slot.

A worker whose model fails to start (`__init__` or `warmup` raises) writes why in
`workers/startup-failed`: uvicorn then stops every worker and exits 0, and `relaxml serve`
turns that file into a non-zero exit status.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

from .filelock import lock_file

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one worker, slot 0, ready when this one is
    fcntl = None  # type: ignore[assignment]

MOST_SLOTS = 1024
FAILED = "startup-failed"


def workers_dir(data_dir: Path) -> Path:
    """Where the worker slots of a data directory live."""
    return data_dir / "workers"


def startup_failure(directory: Path) -> str | None:
    """Why a worker failed to start (`record_failure`), or None."""
    try:
        return (directory / FAILED).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def forget_failure(directory: Path) -> None:
    """Forget an earlier run's startup failure, before the workers start."""
    (directory / FAILED).unlink(missing_ok=True)


class WorkerSlots:
    """The slot and readiness locks of one worker process, under `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.slot: int | None = None
        self._held: list[IO[str]] = []

    def claim(self) -> int:
        """Lock the lowest free slot and return its number (held until `release`)."""
        if self.slot is not None:
            return self.slot
        self.directory.mkdir(parents=True, exist_ok=True)
        for slot in range(MOST_SLOTS):
            if self._lock(self.directory / f"slot-{slot}.lock", wait=False):
                self.slot = slot
                return slot
        raise RuntimeError(f"no free worker slot in {self.directory}")  # pragma: no cover

    def mark_ready(self) -> None:
        """Say that this worker has loaded and warmed up its model."""
        self._lock(self.directory / f"ready-{self.claim()}.lock", wait=True)

    def ready_count(self) -> int:
        """How many live workers have said they are ready."""
        if fcntl is None:  # pragma: no cover
            return 1 if len(self._held) > 1 else 0
        count = 0
        for path in self.directory.glob("ready-*.lock"):
            try:
                handle = path.open("r", encoding="utf-8")
            except OSError:
                continue
            with handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
                except OSError:
                    count += 1  # held by a ready worker
                else:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return count

    def record_failure(self, reason: str) -> None:
        """Say that this worker's model failed to start, and why (`startup_failure`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / FAILED).write_text(f"{reason}\n", encoding="utf-8")

    def release(self) -> None:
        """Drop every lock (at shutdown; a dying process drops them anyway)."""
        for handle in self._held:
            handle.close()
        self._held.clear()
        self.slot = None

    def _lock(self, path: Path, *, wait: bool) -> bool:
        handle = lock_file(path, wait=wait)
        if handle is None:
            return False
        self._held.append(handle)
        return True
