"""Benchmark 2, responsiveness: /health latency while a slow model serves a bulk request.

The slow model takes 200 ms per task, in two flavours: waiting with the GIL released (as
native inference code does) and computing in pure Python, holding the GIL. While one bulk
"Retrieve Predictions" request runs, a closed loop on one connection asks /health as fast
as it answers (Label Studio asks once in a while, with a 1 s timeout; the loop gives
thousands of samples). The same loop on the idle server gives the baseline.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import payloads
from common import Server, rounded, running
from load import LoadResult, post_json
from suite import Suite

NAME = "responsiveness"
MODELS = {"Slow": "waits (GIL released)", "SlowCPU": "computes in Python (holds the GIL)"}
TARGET_MS = 50.0


def run(suite: Suite) -> dict[str, Any]:
    bulk_tasks = suite.scale(10, 25)
    idle_seconds = suite.scale(1, 2)
    rows = []
    for model, flavour in MODELS.items():
        for name, spec in suite.servers(model).items():
            if spec is None:
                rows.append(
                    {
                        "server": name,
                        "model": model,
                        "measured": False,
                        "note": suite.incumbent_note,
                    }
                )
                continue
            with running(spec, suite.log_dir, suite.pinning.server) as server:
                row = measure(suite, server, bulk_tasks, idle_seconds)
            rows.append({"server": name, "model": model, "flavour": flavour, **row})
    return {
        "settings": {
            "bulk_tasks": bulk_tasks,
            "seconds_per_task": 0.2,
            "health_connections": 1,
            "idle_seconds": idle_seconds,
        },
        "rows": rows,
        "target_ms": TARGET_MS,
    }


def measure(suite: Suite, server: Server, tasks: int, idle_seconds: int) -> dict[str, Any]:
    """/health when idle, then during one bulk request of `tasks` slow tasks."""
    health = server.url("/health")
    suite.load.run(health, None, 1, 1)  # warm-up, not recorded
    idle = suite.load.run(health, None, 1, idle_seconds)
    answer: dict[str, Any] = {}
    bulk = threading.Thread(target=_bulk, args=(server, tasks, answer), daemon=True)
    bulk.start()
    time.sleep(0.3)  # the bulk request is in predict by now
    window = max(1, int(tasks * 0.2 - 1.0))
    during = suite.load.run(health, None, 1, window)
    load_end = time.perf_counter()
    bulk.join(timeout=tasks * 0.2 * 10 + 60)
    results = answer.get("results")
    ok = answer.get("status") == 200 and isinstance(results, list) and len(results) == tasks
    return {
        "measured": True,
        "bulk_ok": ok,
        "bulk_seconds": rounded(answer.get("seconds"), 3),
        "overlapped": answer.get("ended", 0.0) >= load_end,
        "health_requests": during.requests,
        "health_errors": during.errors,
        "health_window_s": window,
        "during": latency(during),
        "idle": latency(idle),
    }


def _bulk(server: Server, tasks: int, answer: dict[str, Any]) -> None:
    start = time.perf_counter()
    try:
        status, body = post_json(server.port, "/predict", payloads.predict_body(tasks), 300)
    except OSError as exc:
        status, body = 0, str(exc)
    answer.update(
        status=status,
        results=body.get("results") if isinstance(body, dict) else None,
        seconds=time.perf_counter() - start,
        ended=time.perf_counter(),
    )


def latency(result: LoadResult) -> dict[str, Any]:
    """A load run's rate and latency percentiles, rounded for the results file."""
    return {
        "requests_per_s": rounded(result.requests_per_s, 1),
        "p50_ms": rounded(result.p50_ms, 3),
        "p95_ms": rounded(result.p95_ms, 3),
        "p99_ms": rounded(result.p99_ms, 3),
        "max_ms": rounded(result.max_ms, 3),
    }
