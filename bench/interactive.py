"""Benchmark 7, interactive first: annotators' requests while a big background job runs.

A model that takes 5 ms per task (waiting with the GIL released, as native inference code
does) predicts a background job of 10,000 tasks, delivered to a fake Label Studio on loopback.
Meanwhile one connection sends interactive requests in a closed loop (one task with
`params.context`, as Label Studio's editor sends for a smart tool) and another asks
`/health`. The same two loops on the same server before the job started give the baseline,
so each figure stands beside its idle value.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import payloads
from common import Server, running
from load import LoadResult, post_json
from responsiveness import latency
from suite import RELAXML, Suite, relaxml_spec

from relaxml.testing import FakeLabelStudio

NAME = "interactive"
TOKEN = "bench-token-123456"
SECONDS_PER_TASK = 0.005
INTERACTIVE_P99_MS = 50.0
HEALTH_P99_MS = 10.0


def interactive_body(task_id: int = 1) -> bytes:
    """One task with `params.context`, as the editor sends when an annotator uses a smart tool."""
    body = {
        "tasks": [payloads.task(task_id)],
        "project": payloads.PROJECT,
        "label_config": payloads.LABEL_CONFIG,
        "params": {"login": None, "password": None, "context": {"result": []}},
    }
    return json.dumps(body).encode()


def run(suite: Suite) -> dict[str, Any]:
    tasks = suite.scale(400, 10_000)
    seconds = suite.scale(1, 10)
    fake = FakeLabelStudio(api_key=TOKEN, accept_unknown_tasks=True)
    env = {
        "LABEL_STUDIO_URL": fake.url,
        "LABEL_STUDIO_API_KEY": TOKEN,
        "RELAXML_DELIVERY": "background",
    }
    spec = relaxml_spec("Bulk5ms", suite.workdir / "relaxml-data-Bulk5ms", env)
    try:
        with running(spec, suite.log_dir, suite.pinning.server) as server:
            row = measure(suite, server, tasks, seconds)
    finally:
        fake.close()
    return {
        "settings": {
            "background_tasks": tasks,
            "seconds_per_task": SECONDS_PER_TASK,
            "seconds": seconds,
            "connections": {"interactive": 1, "health": 1},
        },
        "rows": [{"server": RELAXML, "model": "Bulk5ms", **row}],
        "targets_ms": {"interactive_p99": INTERACTIVE_P99_MS, "health_p99": HEALTH_P99_MS},
    }


def measure(suite: Suite, server: Server, tasks: int, seconds: int) -> dict[str, Any]:
    """Both loops idle, then both during the background job."""
    body = interactive_body()
    suite.load.run(server.url("/predict"), body, 1, 1)  # warm-up, not recorded
    idle = _both(suite, server, body, seconds)
    status, answer = post_json(server.port, "/predict", payloads.predict_body(tasks), 300)
    job = answer.get("job") if isinstance(answer, dict) else None
    if status != 200 or not job:
        return {"measured": False, "note": f"the job was not queued: {status} {str(answer)[:200]}"}
    time.sleep(0.5)  # the deliverer is predicting by now
    during = _both(suite, server, body, seconds)
    report = _job(server, job)
    post_json(server.port, f"/jobs/{job}/cancel", b"{}", 30)  # the rest is not measured
    return {
        "measured": True,
        "job_state": report.get("state"),
        "predicted_during": report.get("done", 0) + report.get("delivering", 0),
        "idle": idle,
        "during": during,
    }


def _both(suite: Suite, server: Server, body: bytes, seconds: int) -> dict[str, Any]:
    """The interactive loop and the /health loop at once, for `seconds`."""
    found: dict[str, LoadResult] = {}

    def interactive() -> None:
        found["interactive"] = suite.load.run(server.url("/predict"), body, 1, seconds)

    thread = threading.Thread(target=interactive)
    thread.start()
    found["health"] = suite.load.run(server.url("/health"), None, 1, seconds)
    thread.join()
    return {
        name: {"requests": result.requests, "errors": result.errors, **latency(result)}
        for name, result in found.items()
    }


def _job(server: Server, job: str) -> dict[str, Any]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", f"/jobs/{job}")
        answer = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    return answer if isinstance(answer, dict) else {}
