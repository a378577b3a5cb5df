"""Benchmark 5, memory: resident memory when idle, and its peak under load.

Memory is summed over the server's process tree (gunicorn's master and worker both count):
VmRSS when idle, PSS when idle (pages that forked processes share, split between them), and
the sum of each process's VmHWM after a load of 100-task requests and one bulk request.
"""

from __future__ import annotations

import time
from typing import Any

import payloads
from common import memory_of, rounded, running
from load import post_json
from suite import Suite

NAME = "memory"
CONNECTIONS = 8


def run(suite: Suite) -> dict[str, Any]:
    load_seconds = suite.scale(1, 5)
    bulk_tasks = suite.scale(500, 5000)
    body = payloads.predict_body(100)
    bulk = payloads.predict_body(bulk_tasks)
    rows = []
    for name, spec in suite.servers("Trivial").items():
        if spec is None:
            rows.append({"server": name, "measured": False, "note": suite.incumbent_note})
            continue
        with running(spec, suite.log_dir, suite.pinning.server) as server:
            time.sleep(suite.scale(0.2, 1.0))  # let start-up settle
            idle = memory_of(server.pid)
            load = suite.load.run(server.url("/predict"), body, CONNECTIONS, load_seconds)
            status, answer = post_json(server.port, "/predict", bulk, timeout=300)
            results = answer.get("results") if isinstance(answer, dict) else None
            peak = memory_of(server.pid)
        rows.append(
            {
                "server": name,
                "measured": True,
                "processes": idle.processes,
                "idle_rss_mib": rounded(idle.rss_mib, 1),
                "idle_pss_mib": rounded(idle.pss_mib, 1),
                "peak_rss_mib": rounded(peak.hwm_mib, 1),
                "rss_after_mib": rounded(peak.rss_mib, 1),
                "load_requests": load.requests,
                "load_errors": load.errors,
                "bulk_ok": status == 200
                and isinstance(results, list)
                and len(results) == bulk_tasks,
            }
        )
    return {
        "settings": {
            "load": f"{CONNECTIONS} connections x 100-task requests for {load_seconds} s",
            "bulk_tasks": bulk_tasks,
            "bulk_body_bytes": len(bulk),
        },
        "rows": rows,
    }
