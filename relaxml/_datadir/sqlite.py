"""`Database`: one SQLite file in the data directory, shared by the outbox, the training queue
and the version store, each of which owns its own tables."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

FILENAME = "relaxml.sqlite3"


class Database:
    """A thread-safe SQLite connection in WAL mode, several processes sharing the file."""

    def __init__(self, path: Path, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()

    def transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work` in one immediate (write-locking) transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

    def read(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run read-only `work`."""
        with self._lock:
            return work(self._db)
