"""`job_report`: what `/jobs` and the delivery log say about a background prediction job."""

from __future__ import annotations

import time
from typing import Any

from .outbox import Job


def job_report(job: Job, counts: dict[str, int]) -> dict[str, Any]:
    """A job's counts, state, rate (tasks delivered per second) and ETA in seconds."""
    finished = counts["done"] + counts["failed"]
    elapsed = max(time.time() - job.created_at, 1e-6)
    rate = counts["done"] / elapsed
    remaining = job.total - finished
    if remaining <= 0:
        state = "failed" if counts["failed"] and not counts["done"] else "done"
    else:
        state = "predicting" if counts["queued"] + counts["predicting"] else "delivering"
    return {
        "id": job.id,
        "project": job.project_uid,
        "model_version": job.model_version,
        "state": state,
        "total": job.total,
        "queued": counts["queued"],
        "predicting": counts["predicting"],
        "delivering": counts["ready"] + counts["sending"],
        "done": counts["done"],
        "failed": counts["failed"],
        "created_at": job.created_at,
        "rate": rate,
        "eta": remaining / rate if rate > 0 and remaining > 0 else None,
    }
