"""`VersionStore`: every model version a data directory has produced, and the current one.

Shared by all worker processes: the leader records a version when `fit` returns one; every
worker polls `current()` and hot-swaps to it; `relaxml versions use V` rolls back by making an
older version current.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._datadir.sqlite import Database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    version TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    run_id INTEGER,
    project TEXT,
    annotations INTEGER,
    path TEXT
);
CREATE TABLE IF NOT EXISTS current_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version TEXT NOT NULL,
    changed_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class VersionRecord:
    """One version: when and how it was made, and where its artifacts are (if saved)."""

    version: str
    created_at: float
    run_id: int | None
    project: str | None
    annotations: int | None
    path: str | None

    def to_dict(self) -> dict[str, Any]:
        """The version as JSON."""
        return {
            "version": self.version,
            "created_at": self.created_at,
            "run": f"run-{self.run_id}" if self.run_id else None,
            "project": self.project,
            "annotations": self.annotations,
            "artifacts": self.path is not None,
        }


def artifacts_dir(data_dir: Path, version: str) -> Path:
    """Where the artifacts of `version` live: `<data_dir>/versions/<safe version name>`."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", version).strip(".") or "_"
    return data_dir / "versions" / safe


class VersionStore:
    """The version history and the current version. Thread- and process-safe."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, _SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def record(
        self,
        version: str,
        *,
        run_id: int | None = None,
        project: str | None = None,
        annotations: int | None = None,
        path: Path | None = None,
        make_current: bool = True,
    ) -> None:
        """Add (or replace) a version, and make it current."""
        now = time.time()

        def work(db: Any) -> None:
            db.execute(
                "INSERT OR REPLACE INTO versions VALUES (?, ?, ?, ?, ?, ?)",
                (version, now, run_id, project, annotations, str(path) if path else None),
            )
            if make_current:
                _set_current(db, version, now)

        self._db.transaction(work)

    def ensure(self, version: str) -> None:
        """Record the model's initial version once, without changing the current one."""

        def work(db: Any) -> None:
            db.execute(
                "INSERT OR IGNORE INTO versions (version, created_at) VALUES (?, ?)",
                (version, time.time()),
            )

        self._db.transaction(work)

    def use(self, version: str) -> VersionRecord:
        """Make a recorded version current (a rollback); `KeyError` when unknown."""
        found = self.get(version)
        if found is None:
            raise KeyError(version)
        self._db.transaction(lambda db: _set_current(db, version, time.time()))
        return found

    def current(self) -> str | None:
        """The current version, if any was ever made current."""
        row = self._db.read(
            lambda db: db.execute("SELECT version FROM current_version WHERE id = 1").fetchone()
        )
        return str(row[0]) if row else None

    def get(self, version: str) -> VersionRecord | None:
        """One version."""
        row = self._db.read(
            lambda db: db.execute("SELECT * FROM versions WHERE version = ?", (version,)).fetchone()
        )
        return VersionRecord(*row) if row else None

    def history(self) -> list[VersionRecord]:
        """Every version, oldest first."""
        rows = self._db.read(
            lambda db: db.execute("SELECT * FROM versions ORDER BY created_at, rowid").fetchall()
        )
        return [VersionRecord(*row) for row in rows]


def _set_current(db: Any, version: str, now: float) -> None:
    db.execute(
        "INSERT INTO current_version (id, version, changed_at) VALUES (1, ?, ?)"
        " ON CONFLICT (id) DO UPDATE SET version = excluded.version,"
        " changed_at = excluded.changed_at",
        (version, now),
    )
