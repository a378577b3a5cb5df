"""`Outbox`: the durable queue of background predictions, in one SQLite file.

An item is one task of one background job. It moves

    queued → predicting → ready → sending → done
                 ↘ failed (the model raised on it)      ↘ ready again (delivery failed: retry later)

and leaves the queue only when Label Studio confirmed its prediction (`done`; its payload is
dropped). `compact()` keeps the file small: settled `done` items are folded into a per-job count,
and finished jobs are forgotten after `RETENTION` or beyond the newest `MAX_FINISHED_JOBS`.
After a crash, `recover()` puts `predicting` items back in the queue and marks
`sending` items for verification: before one is sent again, Label Studio is asked whether it
already stored it, so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._datadir.sqlite import Database

ACTIVE = ("queued", "predicting", "ready", "sending")
STATES = (*ACTIVE, "done", "failed")

SETTLE = 60.0
"""Seconds a `done` item stays a row before `compact` folds it into its job's count."""
RETENTION = 7 * 24 * 3600.0
"""Seconds a finished job (nothing left to predict or send) is kept for `/jobs`."""
MAX_FINISHED_JOBS = 10_000
"""Most finished jobs kept; older ones are forgotten first."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    project_uid TEXT NOT NULL,
    project_id INTEGER,
    model_version TEXT NOT NULL,
    label_config TEXT,
    hostname TEXT,
    created_at REAL NOT NULL,
    total INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    project_id INTEGER,
    model_version TEXT NOT NULL,
    state TEXT NOT NULL,
    task TEXT,
    prediction TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    verify INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (job_id, task_id)
);
CREATE TABLE IF NOT EXISTS archived (
    job_id TEXT PRIMARY KEY,
    done INTEGER NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_state ON items (state, next_at);
CREATE INDEX IF NOT EXISTS items_by_job ON items (state, job_id, next_at);
CREATE INDEX IF NOT EXISTS items_by_task ON items (project_id, task_id, model_version);
"""


@dataclass(frozen=True)
class Job:
    """A background job: the tasks of one `/predict` request (or one `send_predictions`)."""

    id: str
    project_uid: str
    project_id: int | None
    model_version: str
    label_config: str | None
    hostname: str | None
    created_at: float
    total: int


@dataclass(frozen=True)
class Item:
    """One task of a job, with its prediction once computed."""

    job_id: str
    task_id: int
    project_id: int | None
    model_version: str
    task: dict[str, Any] | None
    prediction: list[dict[str, Any]] | None
    attempts: int
    verify: bool


class Outbox:
    """The SQLite-backed queue. Thread-safe; every method is short and synchronous."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._store = Database(path, _SCHEMA)
        self._transaction = self._store.transaction

    def close(self) -> None:
        """Close the database."""
        self._store.close()

    def add_job(
        self,
        *,
        project_uid: str,
        project_id: int | None,
        model_version: str,
        label_config: str | None,
        hostname: str | None,
        tasks: Sequence[dict[str, Any]] = (),
        predictions: Sequence[tuple[int, list[dict[str, Any]]]] = (),
    ) -> tuple[Job, int]:
        """Queue tasks to predict (or ready predictions to deliver) as one job.

        Tasks already queued or in flight for the same project and model version are skipped
        (people click Retrieve twice). Returns the job and how many items it took.
        """
        now = time.time()
        job = Job(
            id=uuid.uuid4().hex[:12],
            project_uid=project_uid,
            project_id=project_id,
            model_version=model_version,
            label_config=label_config,
            hostname=hostname,
            created_at=now,
            total=0,
        )

        def work(db: sqlite3.Connection) -> int:
            busy = _active_task_ids(db, project_id, model_version)
            rows = [
                (job.id, t["id"], project_id, model_version, "queued", json.dumps(t), None, now)
                for t in tasks
                if t["id"] not in busy
            ] + [
                (job.id, task_id, project_id, model_version, "ready", None, json.dumps(p), now)
                for task_id, p in predictions
                if task_id not in busy
            ]
            db.executemany(
                "INSERT OR IGNORE INTO items (job_id, task_id, project_id, model_version, state,"
                " task, prediction, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.execute(
                "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id, project_uid, project_id, model_version, label_config, hostname,
                    now, len(rows),
                ),
            )  # fmt: skip
            return len(rows)

        count = self._transaction(work)
        return replace(job, total=count), count

    def job(self, job_id: str) -> Job | None:
        """A job by id."""
        row = self._store.read(
            lambda db: db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return Job(*row) if row else None

    def claim_to_predict(self, limit: int) -> tuple[Job, list[Item]] | None:
        """Take up to `limit` queued tasks of the oldest job with work, marking them predicting."""

        def work(db: sqlite3.Connection) -> tuple[Job, list[Item]] | None:
            # queued items never have a retry time (next_at 0): the order is the queue's,
            # read straight off the indexes, however many tasks are queued
            row = db.execute(
                "SELECT job_id FROM items WHERE state = 'queued' ORDER BY next_at, rowid LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            items = _items(
                db.execute(
                    "SELECT * FROM items WHERE state = 'queued' AND job_id = ?"
                    " ORDER BY next_at, rowid LIMIT ?",
                    (row[0], limit),
                )
            )
            _set_state(db, items, "predicting")
            job = db.execute("SELECT * FROM jobs WHERE id = ?", (row[0],)).fetchone()
            return Job(*job), items

        result: tuple[Job, list[Item]] | None = self._transaction(work)
        return result

    def predicted(self, job_id: str, results: dict[int, list[dict[str, Any]] | str]) -> None:
        """Store each task's predictions (ready to deliver), or its error (failed)."""
        now = time.time()

        def work(db: sqlite3.Connection) -> None:
            for task_id, outcome in results.items():
                if isinstance(outcome, str):
                    db.execute(
                        "UPDATE items SET state = 'failed', error = ?, task = NULL,"
                        " updated_at = ? WHERE job_id = ? AND task_id = ?",
                        (outcome, now, job_id, task_id),
                    )
                else:
                    db.execute(
                        "UPDATE items SET state = 'ready', prediction = ?, task = NULL,"
                        " updated_at = ? WHERE job_id = ? AND task_id = ?",
                        (json.dumps(outcome), now, job_id, task_id),
                    )

        self._transaction(work)

    def claim_to_send(self, limit: int, *, hold: float = 0.0) -> tuple[Job, list[Item]] | None:
        """Take up to `limit` ready items of one job whose retry time has come.

        With `hold` (seconds), the ready items of a job that still has tasks to predict are
        held back until `limit` of them are ready, so that a job predicted quickly goes in
        few, full imports (each costs Label Studio a recount of the project); they go as they
        are once the job's prediction is over, once the first of them has waited `hold`
        seconds, or when one is a retry whose time has come.
        """
        now = time.time()

        def work(db: sqlite3.Connection) -> tuple[Job, list[Item]] | None:
            candidates = db.execute(
                "SELECT job_id, COUNT(*), MAX(next_at) FROM items"
                " WHERE state = 'ready' AND next_at <= ? GROUP BY job_id"
                " ORDER BY MIN(next_at), MIN(rowid)",
                (now,),
            ).fetchall()
            for job_id, ready, retry_at in candidates:
                if hold <= 0 or ready >= limit or retry_at > 0 or _due(db, job_id, now - hold):
                    return _claim_ready(db, job_id, now, limit)
            return None

        result: tuple[Job, list[Item]] | None = self._transaction(work)
        return result

    def delivered(self, job_id: str, task_ids: Iterable[int]) -> None:
        """Label Studio confirmed these: done, payload dropped."""
        now = time.time()
        self._transaction(
            lambda db: db.executemany(
                "UPDATE items SET state = 'done', prediction = NULL, error = NULL, verify = 0,"
                " updated_at = ? WHERE job_id = ? AND task_id = ?",
                [(now, job_id, t) for t in task_ids],
            )
        )

    def retry_later(self, job_id: str, task_ids: Iterable[int], error: str, delay: float) -> None:
        """Delivery failed: back to ready, to be verified and sent again after `delay`."""
        now = time.time()
        self._transaction(
            lambda db: db.executemany(
                "UPDATE items SET state = 'ready', verify = 1, attempts = attempts + 1,"
                " error = ?, next_at = ?, updated_at = ? WHERE job_id = ? AND task_id = ?",
                [(error, now + delay, now, job_id, t) for t in task_ids],
            )
        )

    def give_up(self, job_id: str, task_ids: Iterable[int], error: str) -> None:
        """Label Studio refused these for good (e.g. the task was deleted): failed."""
        now = time.time()
        self._transaction(
            lambda db: db.executemany(
                "UPDATE items SET state = 'failed', error = ?, prediction = NULL,"
                " updated_at = ? WHERE job_id = ? AND task_id = ?",
                [(error, now, job_id, t) for t in task_ids],
            )
        )

    def cancel(self, job_id: str) -> int:
        """Stop a job: items not yet delivered fail as cancelled. Returns how many."""
        now = time.time()
        cursor = self._transaction(
            lambda db: db.execute(
                "UPDATE items SET state = 'failed', error = 'cancelled', task = NULL,"
                " prediction = NULL, updated_at = ? WHERE job_id = ?"
                " AND state IN ('queued', 'ready')",
                (now, job_id),
            )
        )
        return int(cursor.rowcount)

    def recover(self) -> int:
        """After a crash: requeue `predicting`, verify-then-resend `sending`. Returns the count."""

        def work(db: sqlite3.Connection) -> int:
            a = db.execute("UPDATE items SET state = 'queued' WHERE state = 'predicting'")
            b = db.execute("UPDATE items SET state = 'ready', verify = 1 WHERE state = 'sending'")
            return int(a.rowcount + b.rowcount)

        count: int = self._transaction(work)
        return count

    def counts(self, job_id: str | None = None) -> dict[str, int]:
        """Items per state, for one job or all (`done` includes the items `compact` folded)."""
        query = "SELECT state, COUNT(*) FROM items"
        archived = "SELECT COALESCE(SUM(done), 0) FROM archived"
        args: tuple[Any, ...] = ()
        if job_id is not None:
            states = ", ".join(f"'{state}'" for state in STATES)  # a range of the job index each
            query, archived, args = (
                query + f" WHERE state IN ({states}) AND job_id = ?",
                archived + " WHERE job_id = ?",
                (job_id,),
            )

        def work(db: sqlite3.Connection) -> tuple[list[Any], int]:
            rows = db.execute(query + " GROUP BY state", args).fetchall()
            return rows, int(db.execute(archived, args).fetchone()[0])

        rows, folded = self._store.read(work)
        found = dict(rows)
        counts = {state: int(found.get(state, 0)) for state in STATES}
        counts["done"] += folded
        return counts

    def compact(
        self,
        *,
        settle: float = SETTLE,
        retention: float = RETENTION,
        max_finished: int = MAX_FINISHED_JOBS,
    ) -> tuple[int, int]:
        """Fold settled `done` items into their job's count; forget old finished jobs.

        A job is finished when none of its items is active. Returns (items folded, jobs
        forgotten). Nothing active is ever touched, so nothing is lost and dedupe still works.
        """
        now = time.time()
        active = ", ".join(f"'{state}'" for state in ACTIVE)

        def work(db: sqlite3.Connection) -> tuple[int, int]:
            db.execute(
                "INSERT INTO archived (job_id, done, updated_at)"
                " SELECT job_id, COUNT(*), MAX(updated_at) FROM items"
                " WHERE state = 'done' AND updated_at < ? GROUP BY job_id"
                " ON CONFLICT (job_id) DO UPDATE SET done = done + excluded.done,"
                " updated_at = MAX(updated_at, excluded.updated_at)",
                (now - settle,),
            )
            folded = db.execute(
                "DELETE FROM items WHERE state = 'done' AND updated_at < ?", (now - settle,)
            ).rowcount
            db.execute("CREATE TEMP TABLE IF NOT EXISTS forget (id TEXT PRIMARY KEY)")
            db.execute("DELETE FROM temp.forget")
            db.execute(
                "INSERT INTO temp.forget SELECT id FROM jobs WHERE NOT EXISTS"
                f" (SELECT 1 FROM items WHERE items.job_id = jobs.id AND state IN ({active}))"
                " AND (created_at < ? OR id NOT IN"
                " (SELECT id FROM jobs ORDER BY created_at DESC LIMIT ?))",
                (now - retention, max_finished),
            )
            db.execute("DELETE FROM items WHERE job_id IN (SELECT id FROM temp.forget)")
            db.execute("DELETE FROM archived WHERE job_id IN (SELECT id FROM temp.forget)")
            forgotten = db.execute(
                "DELETE FROM jobs WHERE id IN (SELECT id FROM temp.forget)"
            ).rowcount
            return int(folded), int(forgotten)

        result: tuple[int, int] = self._transaction(work)
        return result

    def jobs(self, limit: int = 50) -> list[Job]:
        """The newest jobs first."""
        rows = self._store.read(
            lambda db: db.execute(
                "SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?", (limit,)
            ).fetchall()
        )
        return [Job(*row) for row in rows]

    def job_details(self, job_id: str) -> dict[str, Any]:
        """Timing and the latest errors of one job."""

        def work(db: sqlite3.Connection) -> tuple[Any, Any, list[Any]]:
            finished, last = db.execute(
                "SELECT COALESCE(SUM(state IN ('done', 'failed')), 0)"
                " + (SELECT COALESCE(SUM(done), 0) FROM archived WHERE job_id = ?),"
                " MAX(COALESCE(MAX(updated_at), 0),"
                " (SELECT COALESCE(MAX(updated_at), 0) FROM archived WHERE job_id = ?))"
                " FROM items WHERE job_id = ?",
                (job_id, job_id, job_id),
            ).fetchone()
            errors = db.execute(
                "SELECT task_id, state, error FROM items WHERE job_id = ? AND error IS NOT NULL"
                " ORDER BY updated_at DESC LIMIT 10",
                (job_id,),
            ).fetchall()
            return finished, last, errors

        finished, last, errors = self._store.read(work)
        return {
            "finished": int(finished or 0),
            "last_update": last or None,
            "errors": [{"task": t, "state": s, "error": e} for t, s, e in errors],
        }


def _due(db: sqlite3.Connection, job_id: str, since: float) -> bool:
    """Whether a job's ready items go now: its prediction is over, or they waited since `since`."""
    predicting = db.execute(
        "SELECT 1 FROM items WHERE state IN ('queued', 'predicting') AND job_id = ? LIMIT 1",
        (job_id,),
    ).fetchone()
    if predicting is None:
        return True
    first = db.execute(
        "SELECT updated_at FROM items WHERE state = 'ready' AND job_id = ?"
        " ORDER BY next_at, rowid LIMIT 1",
        (job_id,),
    ).fetchone()
    return first is not None and float(first[0]) <= since


def _claim_ready(
    db: sqlite3.Connection, job_id: str, now: float, limit: int
) -> tuple[Job, list[Item]]:
    """Mark up to `limit` of a job's ready items due by `now` as sending (oldest first)."""
    items = _items(
        db.execute(
            "SELECT * FROM items WHERE state = 'ready' AND job_id = ? AND next_at <= ?"
            " ORDER BY rowid LIMIT ?",
            (job_id, now, limit),
        )
    )
    _set_state(db, items, "sending")
    job = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return Job(*job), items


def _active_task_ids(db: sqlite3.Connection, project_id: int | None, version: str) -> set[int]:
    placeholders = ", ".join("?" for _ in ACTIVE)
    rows = db.execute(
        f"SELECT task_id FROM items WHERE project_id IS ? AND model_version = ?"
        f" AND state IN ({placeholders})",
        (project_id, version, *ACTIVE),
    )
    return {row[0] for row in rows}


def _items(cursor: sqlite3.Cursor) -> list[Item]:
    names = [d[0] for d in cursor.description]
    items = []
    for row in cursor.fetchall():
        r = dict(zip(names, row, strict=True))
        items.append(
            Item(
                job_id=r["job_id"],
                task_id=r["task_id"],
                project_id=r["project_id"],
                model_version=r["model_version"],
                task=json.loads(r["task"]) if r["task"] else None,
                prediction=json.loads(r["prediction"]) if r["prediction"] else None,
                attempts=r["attempts"],
                verify=bool(r["verify"]),
            )
        )
    return items


def _set_state(db: sqlite3.Connection, items: list[Item], state: str) -> None:
    now = time.time()
    db.executemany(
        "UPDATE items SET state = ?, updated_at = ? WHERE job_id = ? AND task_id = ?",
        [(state, now, item.job_id, item.task_id) for item in items],
    )
