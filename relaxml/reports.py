"""What relaxml reports about its work: jobs, training runs and versions (`/jobs`,
`/jobs/{id}`, `/jobs/{id}/cancel`, `/job_status`, `/versions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .delivery import job_status as prediction_job
from .errors import BadRequest, HTTPError
from .protocol import as_mapping, ascii_int

if TYPE_CHECKING:
    from .backend import Backend


def list_jobs(backend: Backend) -> dict[str, Any]:
    """`GET /jobs`: background prediction jobs and training runs, newest first."""
    outbox = backend.outbox
    return {
        "jobs": [prediction_job(job, outbox.counts(job.id)) for job in outbox.jobs()],
        "outbox": outbox.counts(),
        "training": backend.trainer.describe_runs(),
    }


def get_job(backend: Backend, job_id: str) -> dict[str, Any]:
    """`GET /jobs/{job_id}`: a prediction job with its latest errors, or a training run."""
    if not _possible(job_id):
        raise HTTPError(404, "not_found", f"no job {job_id[:100]!r}")
    job = backend.outbox.job(job_id)
    if job is not None:
        counts = backend.outbox.counts(job_id)
        return {
            "kind": "predictions",
            **prediction_job(job, counts),
            **backend.outbox.job_details(job_id),
        }
    run = backend.trainer.lookup(job_id)
    if run is None:
        raise HTTPError(404, "not_found", f"no job {job_id!r}")
    return {"kind": "training", **run}


def cancel_job(backend: Backend, job_id: str) -> dict[str, Any]:
    """`POST /jobs/{job_id}/cancel`: stop a prediction job or a training run."""
    if not _possible(job_id):
        raise HTTPError(404, "not_found", f"no job {job_id[:100]!r} to cancel")
    if backend.outbox.job(job_id) is not None:
        cancelled = backend.outbox.cancel(job_id)
        return {"job": job_id, "status": "cancelled", "cancelled": cancelled}
    record = backend.trainer.cancel(job_id)
    if record is None:
        raise HTTPError(404, "not_found", f"no job {job_id!r} to cancel")
    status = "cancelling" if record.state == "running" else record.state
    return {"job": job_id, "status": status}


def _possible(job_id: str) -> bool:
    """False for an id no job can have: `run-N`/`event-N` with N not a 64-bit ASCII number."""
    kind, dash, number = job_id.partition("-")
    return not dash or kind not in ("run", "event") or ascii_int(number) is not None


def job_status(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /job_status`: Label Studio's shape, `{"job": id}` in, the job's state out."""
    job = as_mapping(body).get("job")
    if not isinstance(job, (str, int)) or isinstance(job, bool):
        raise BadRequest("missing field 'job': expected a job id", field="job")
    found = get_job(backend, str(job))
    return {"job": str(job), "status": found["state"], **found}


def list_versions(backend: Backend) -> dict[str, Any]:
    """`GET /versions`: every version of this data directory, oldest first, and the current."""
    history = backend.versions.history()
    return {
        "versions": [v.version for v in history],
        "current": backend.model_version,
        "history": [v.to_dict() for v in history],
    }
