"""`VersionStore`: every model version a data directory has produced, and the current one.

Shared by all worker processes: the leader records a version when `fit` returns one; every
worker polls `current()` and hot-swaps to it; `relaxml versions use V` rolls back by making an
older version current.

A model with `per_project = True` has a history and a current version per Label Studio project:
`for_project(key)` is the same store seen through one project (its own tables, added beside the
older ones, so an existing data directory keeps working). The store itself is the single key
`*` of every other model.
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
CREATE TABLE IF NOT EXISTS project_versions (
    scope TEXT NOT NULL,
    version TEXT NOT NULL,
    created_at REAL NOT NULL,
    run_id INTEGER,
    project TEXT,
    annotations INTEGER,
    path TEXT,
    PRIMARY KEY (scope, version)
);
CREATE TABLE IF NOT EXISTS project_current_version (
    scope TEXT PRIMARY KEY,
    version TEXT NOT NULL,
    changed_at REAL NOT NULL
);
"""

ALL_PROJECTS = "*"
"""The key of a model that serves every project with one instance."""

_COLUMNS = "version, created_at, run_id, project, annotations, path"


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


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).strip(".") or "_"


def artifacts_dir(data_dir: Path, version: str) -> Path:
    """Where the artifacts of `version` live: `<data_dir>/versions/<safe version name>`."""
    return data_dir / "versions" / _safe(version)


def project_dir(data_dir: Path, key: str) -> Path:
    """The directory of one project's versions under a data directory: `<data_dir>` itself
    for `*`, else `<data_dir>/projects/<safe key>` (its artifacts in `versions/` below)."""
    return data_dir if key == ALL_PROJECTS else data_dir / "projects" / _safe(key)


class VersionStore:
    """The version history and the current version. Thread- and process-safe."""

    def __init__(self, path: Path, *, _db: Database | None = None, _scope: str = "*") -> None:
        self._db = _db or Database(path, _SCHEMA)
        self._path = path
        self.scope = _scope
        """The project key this store speaks of; `*` for every project at once."""
        if _scope == ALL_PROJECTS:
            self._where, self._versions, self._current = "", "versions", "current_version"
            self._key: tuple[str, ...] = ()
        else:
            self._where, self._versions = "scope = ? AND ", "project_versions"
            self._current, self._key = "project_current_version", (_scope,)

    def for_project(self, key: str) -> VersionStore:
        """This store seen through one project (`*`: this store). Shares the database: only
        the store built with a path closes it."""
        if key == self.scope:
            return self
        return VersionStore(self._path, _db=self._db, _scope=key)

    def projects(self) -> list[str]:
        """The keys of the projects with a current version of their own."""
        rows = self._db.read(
            lambda db: db.execute(
                "SELECT scope FROM project_current_version ORDER BY scope"
            ).fetchall()
        )
        return [str(row[0]) for row in rows]

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
                f"INSERT OR REPLACE INTO {self._versions} ({self._scoped(_COLUMNS)})"
                f" VALUES ({', '.join('?' * (6 + len(self._key)))})",
                (*self._key, version, now, run_id, project, annotations,
                 str(path) if path else None),
            )  # fmt: skip
            if make_current:
                self._set_current(db, version, now)

        self._db.transaction(work)

    def ensure(self, version: str) -> None:
        """Record the model's initial version once, without changing the current one."""

        def work(db: Any) -> None:
            db.execute(
                f"INSERT OR IGNORE INTO {self._versions} ({self._scoped('version, created_at')})"
                f" VALUES ({', '.join('?' * (2 + len(self._key)))})",
                (*self._key, version, time.time()),
            )

        self._db.transaction(work)

    def use(self, version: str) -> VersionRecord:
        """Make a recorded version current (a rollback); `KeyError` when unknown."""
        found = self.get(version)
        if found is None:
            raise KeyError(version)
        self._db.transaction(lambda db: self._set_current(db, version, time.time()))
        return found

    def current(self) -> str | None:
        """The current version, if any was ever made current."""
        where = "scope = ?" if self._key else "id = 1"
        row = self._db.read(
            lambda db: db.execute(
                f"SELECT version FROM {self._current} WHERE {where}", self._key
            ).fetchone()
        )
        return str(row[0]) if row else None

    def get(self, version: str) -> VersionRecord | None:
        """One version."""
        row = self._db.read(
            lambda db: db.execute(
                f"SELECT {_COLUMNS} FROM {self._versions} WHERE {self._where}version = ?",
                (*self._key, version),
            ).fetchone()
        )
        return VersionRecord(*row) if row else None

    def history(self) -> list[VersionRecord]:
        """Every version, oldest first."""
        where = "WHERE scope = ? " if self._key else ""
        rows = self._db.read(
            lambda db: db.execute(
                f"SELECT {_COLUMNS} FROM {self._versions} {where}ORDER BY created_at, rowid",
                self._key,
            ).fetchall()
        )
        return [VersionRecord(*row) for row in rows]

    def _scoped(self, columns: str) -> str:
        return f"scope, {columns}" if self._key else columns

    def _set_current(self, db: Any, version: str, now: float) -> None:
        key = "scope" if self._key else "id"
        db.execute(
            f"INSERT INTO {self._current} ({key}, version, changed_at) VALUES (?, ?, ?)"
            f" ON CONFLICT ({key}) DO UPDATE SET version = excluded.version,"
            " changed_at = excluded.changed_at",
            (*(self._key or (1,)), version, now),
        )
