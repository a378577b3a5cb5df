"""`LeaderLock`: which worker process runs the background work of a data directory.

With `relaxml serve --workers N`, every worker answers requests, but only the holder of an
exclusive lock on a file in the data directory predicts queued tasks and delivers them (and,
later, trains). The operating system drops the lock when its holder dies, even by SIGKILL, so
another worker takes over within seconds.

`Follower` is a worker that never leads: under `relaxml serve --engine ray`, the Serve replicas
answer requests and queue work in the data directory, and one coordinator leads.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import anyio
import anyio.to_thread

from .filelock import lock_file


class LeaderLock:
    """A non-blocking exclusive lock on `path`, held for the life of the process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        """True while this process holds the lock."""
        return self._file is not None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; return whether this process holds it."""
        if self._file is not None:
            return True
        self._file = lock_file(self.path)
        return self._file is not None

    async def acquire(self, poll: float = 2.0) -> None:
        """Wait (without blocking the event loop) until this process holds the lock."""
        while not await anyio.to_thread.run_sync(self.try_acquire):
            await anyio.sleep(poll)

    def release(self) -> None:
        """Give the lock up (closing the file releases it)."""
        if self._file is not None:
            self._file.close()
            self._file = None


class Follower(LeaderLock):
    """A lock never taken: the process serves requests and queues work, another one leads."""

    def try_acquire(self) -> bool:
        """Never leads."""
        return False

    async def acquire(self, poll: float = 2.0) -> None:
        """Wait forever: the loops that wait for leadership never start here."""
        await anyio.sleep_forever()
