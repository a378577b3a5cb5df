"""`TrainingStore`: the durable queue of training events and the record of training runs.

Every worker writes events here; only the leader (`LeaderLock`) starts runs, so a training
event trains once however many workers there are. A run claims every pending event of its
project, so events that arrive during a run wait for the one next run: coalescing falls out
of the queue. A run interrupted by a crash gives its events back to the queue.

What is kept is bounded: at most `max_events` waiting events per project (the oldest are
dropped), at most `max_bytes` of waiting payloads in all (the oldest are trimmed to their action
and project, so the run still happens), and a finished run's event payloads are dropped when it
ends; its event records go after `RETENTION` seconds.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._datadir.sqlite import Database
from .._throttle import LogThrottle
from ..protocol import ascii_int

logger = logging.getLogger(__name__)

RETENTION = 7 * 24 * 3600.0
MAX_RUNS = 1000  # finished training runs kept (with their event records), newest first
MAX_FINISHED_EVENTS = 100_000  # event records of claimed events kept, newest first
"""Seconds the event records of a finished run are kept (for `/jobs/event-N`)."""

_PRUNE_EVERY = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS training_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    action TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL,
    run_id INTEGER
);
CREATE INDEX IF NOT EXISTS training_events_pending ON training_events (run_id, project);
CREATE TABLE IF NOT EXISTS training_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    action TEXT NOT NULL,
    state TEXT NOT NULL,
    events INTEGER NOT NULL,
    annotations INTEGER,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    version TEXT,
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class RunRecord:
    """One training run as stored."""

    id: int
    project: str
    action: str
    state: str  # running | succeeded | failed | cancelled
    events: int
    annotations: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    version: str | None
    error: str | None
    cancel_requested: bool

    def to_dict(self) -> dict[str, Any]:
        """The run as JSON."""
        return {
            "id": f"run-{self.id}",
            "project": self.project,
            "action": self.action,
            "state": self.state,
            "events": self.events,
            "annotations": self.annotations,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "version": self.version,
            "error": self.error,
        }


class TrainingStore:
    """Events in, runs out. Thread-safe and shared by every worker process."""

    def __init__(
        self, path: Path, *, max_events: int = 1000, max_bytes: int = 64 * 1024 * 1024
    ) -> None:
        self._db = Database(path, _SCHEMA)
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._pruned_at = -1e18
        self._warnings = LogThrottle()  # the bounds warning, once a minute

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def add_event(self, project: str, action: str, payload: dict[str, Any]) -> int:
        """Queue one event; return its id. Applies the count and byte bounds (module doc)."""
        text = json.dumps(payload)

        def work(db: sqlite3.Connection) -> tuple[int, int, int]:
            event_id = db.execute(
                "INSERT INTO training_events (project, action, payload, created_at)"
                " VALUES (?, ?, ?, ?)",
                (project, action, text, time.time()),
            ).lastrowid
            dropped = db.execute(
                "DELETE FROM training_events WHERE run_id IS NULL AND project = ? AND id NOT IN"
                " (SELECT id FROM training_events WHERE run_id IS NULL AND project = ?"
                " ORDER BY id DESC LIMIT ?)",
                (project, project, self.max_events),
            ).rowcount
            return int(event_id or 0), dropped, _trim(db, self.max_bytes)

        event_id, dropped, trimmed = self._db.transaction(work)
        if (dropped or trimmed) and self._warnings.allow("bounded"):
            logger.warning(
                "training events bounded: dropped %d of project %s beyond "
                "RELAXML_MAX_QUEUED_EVENTS=%d, trimmed %d payloads beyond "
                "RELAXML_MAX_QUEUED_EVENT_BYTES=%d",
                dropped, project, self.max_events, trimmed, self.max_bytes,
            )  # fmt: skip
        if time.monotonic() - self._pruned_at > _PRUNE_EVERY:
            self._pruned_at = time.monotonic()
            self.prune()
        return event_id

    def prune(self, retention: float = RETENTION, max_runs: int = MAX_RUNS) -> int:
        """Drop finished runs' event payloads, and their event records after `retention` s;
        keep the newest `max_runs` finished runs (and their events) and the newest
        `MAX_FINISHED_EVENTS` claimed events only."""

        def work(db: sqlite3.Connection) -> int:
            db.execute(
                "DELETE FROM training_runs WHERE state != 'running' AND id NOT IN"
                " (SELECT id FROM training_runs ORDER BY id DESC LIMIT ?)",
                (max_runs,),
            )
            db.execute(
                "DELETE FROM training_events WHERE run_id IS NOT NULL"
                " AND (run_id NOT IN (SELECT id FROM training_runs) OR (run_id IN"
                " (SELECT id FROM training_runs WHERE state != 'running') AND id NOT IN"
                " (SELECT id FROM training_events WHERE run_id IS NOT NULL ORDER BY id DESC"
                " LIMIT ?)))",
                (MAX_FINISHED_EVENTS,),
            )
            finished = "SELECT id FROM training_runs WHERE state != 'running'"
            db.execute(
                f"UPDATE training_events SET payload = '{{}}' WHERE run_id IN ({finished})"
                " AND payload != '{}'"
            )
            return db.execute(
                f"DELETE FROM training_events WHERE run_id IN ({finished} AND finished_at < ?)",
                (time.time() - retention,),
            ).rowcount

        return int(self._db.transaction(work))

    def ready_project(self, every: int, counted: Collection[str]) -> str | None:
        """A project with pending events that should train now, if any.

        Events whose action is in `counted` (annotation changes) start a run only once there are
        `every` of them; any other pending action starts one at once.
        """
        placeholders = ", ".join("?" for _ in counted) or "''"
        row = self._db.read(
            lambda db: db.execute(
                f"SELECT project FROM training_events WHERE run_id IS NULL GROUP BY project"
                f" HAVING SUM(action NOT IN ({placeholders})) > 0"
                f" OR SUM(action IN ({placeholders})) >= ? ORDER BY MIN(id) LIMIT 1",
                (*counted, *counted, every),
            ).fetchone()
        )
        return str(row[0]) if row else None

    def start_run(self, project: str, lead_action: str) -> tuple[int, list[dict[str, Any]]]:
        """Claim every pending event of `project` for a new running run."""

        def work(db: sqlite3.Connection) -> tuple[int, list[dict[str, Any]]]:
            rows = db.execute(
                "SELECT id, action, payload, created_at FROM training_events"
                " WHERE run_id IS NULL AND project = ? ORDER BY id",
                (project,),
            ).fetchall()
            actions = [r[1] for r in rows]
            action = lead_action if lead_action in actions else actions[-1]
            now = time.time()
            run_id = db.execute(
                "INSERT INTO training_runs (project, action, state, events, created_at,"
                " started_at) VALUES (?, ?, 'running', ?, ?, ?)",
                (project, action, len(rows), rows[0][3], now),
            ).lastrowid
            db.executemany(
                "UPDATE training_events SET run_id = ? WHERE id = ?", [(run_id, r[0]) for r in rows]
            )
            return int(run_id or 0), [json.loads(r[2]) for r in rows]

        return self._db.transaction(work)

    def finish_run(
        self,
        run_id: int,
        state: str,
        *,
        version: str | None = None,
        error: str | None = None,
        annotations: int | None = None,
    ) -> None:
        """Record how a run ended; its events' payloads are no longer needed."""

        def work(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE training_runs SET state = ?, version = ?, error = ?, annotations = ?,"
                " finished_at = ? WHERE id = ?",
                (state, version, error, annotations, time.time(), run_id),
            )
            db.execute("UPDATE training_events SET payload = '{}' WHERE run_id = ?", (run_id,))

        self._db.transaction(work)

    def request_cancel(self, run_id: int) -> RunRecord | None:
        """Ask a running run to stop; return the run as it is now."""
        self._db.transaction(
            lambda db: db.execute(
                "UPDATE training_runs SET cancel_requested = 1 WHERE id = ? AND state = 'running'",
                (run_id,),
            )
        )
        return self.run(run_id)

    def recover(self) -> int:
        """After a crash: runs left `running` failed; their events go back to the queue."""

        def work(db: sqlite3.Connection) -> int:
            ids = [r[0] for r in db.execute("SELECT id FROM training_runs WHERE state = 'running'")]
            for run_id in ids:
                db.execute(
                    "UPDATE training_runs SET state = 'failed', finished_at = ?,"
                    " error = 'interrupted: relaxml stopped during the run' WHERE id = ?",
                    (time.time(), run_id),
                )
                db.execute("UPDATE training_events SET run_id = NULL WHERE run_id = ?", (run_id,))
            return len(ids)

        return int(self._db.transaction(work))

    def run(self, run_id: int) -> RunRecord | None:
        """One run."""
        row = self._db.read(
            lambda db: db.execute("SELECT * FROM training_runs WHERE id = ?", (run_id,)).fetchone()
        )
        return _record(row) if row else None

    def event_run(self, event_id: int) -> tuple[bool, int | None]:
        """(whether the event exists, the id of the run that claimed it)."""
        row = self._db.read(
            lambda db: db.execute(
                "SELECT run_id FROM training_events WHERE id = ?", (event_id,)
            ).fetchone()
        )
        return (row is not None, row[0] if row else None)

    def runs(self, limit: int = 50) -> list[RunRecord]:
        """The newest runs first."""
        rows = self._db.read(
            lambda db: db.execute(
                "SELECT * FROM training_runs ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        )
        return [_record(row) for row in rows]

    def pending(self) -> dict[str, int]:
        """Unclaimed events per project."""
        rows = self._db.read(
            lambda db: db.execute(
                "SELECT project, COUNT(*) FROM training_events WHERE run_id IS NULL"
                " GROUP BY project"
            ).fetchall()
        )
        return {str(p): int(n) for p, n in rows}

    def last_success(self, project: str) -> float | None:
        """When the last successful run of `project` started."""
        row = self._db.read(
            lambda db: db.execute(
                "SELECT MAX(started_at) FROM training_runs WHERE project = ?"
                " AND state = 'succeeded'",
                (project,),
            ).fetchone()
        )
        return float(row[0]) if row and row[0] is not None else None


def _trim(db: sqlite3.Connection, max_bytes: int) -> int:
    """Trim the oldest waiting payloads until all of them fit in `max_bytes`; return how many."""
    total = db.execute(
        "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM training_events WHERE run_id IS NULL"
    ).fetchone()[0]
    if total <= max_bytes:
        return 0
    rows = db.execute(
        "SELECT id, project, action, LENGTH(payload), SUBSTR(payload, -32) FROM training_events"
        " WHERE run_id IS NULL AND LENGTH(payload) > 100 ORDER BY id"
    ).fetchall()
    trimmed = 0
    for event_id, project, action, size, tail in rows:
        if total <= max_bytes:
            break
        stub = json.dumps(
            {
                "action": action,
                "project_id": ascii_int(str(project)),
                # `TrainingEvent.to_payload` writes this key last, after everything a caller sent
                "authenticated": not str(tail).endswith('"authenticated": false}'),
            }
        )
        db.execute("UPDATE training_events SET payload = ? WHERE id = ?", (stub, event_id))
        total -= size - len(stub)
        trimmed += 1
    return trimmed


def _record(row: tuple[Any, ...]) -> RunRecord:
    values = list(row)
    values[11] = bool(values[11])
    return RunRecord(*values)
