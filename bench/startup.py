"""Benchmark 6, start-up: from starting the server process to its first healthy /health.

Polled every 5 ms. One unrecorded start first warms the file cache, as on a machine that has
run the server before; the figures are the median, fastest and slowest of the recorded ones.
"""

from __future__ import annotations

import statistics
from typing import Any

from common import rounded, start_server, stop_server, wait_healthy
from suite import Suite

NAME = "startup"


def run(suite: Suite) -> dict[str, Any]:
    repeats = suite.scale(2, 5)
    rows = []
    for name, spec in suite.servers("Trivial").items():
        if spec is None:
            rows.append({"server": name, "measured": False, "note": suite.incumbent_note})
            continue
        times = [_once(suite, spec) for _ in range(repeats + 1)][1:]
        rows.append(
            {
                "server": name,
                "measured": True,
                "command": spec.display(),
                "median_s": rounded(statistics.median(times), 3),
                "min_s": rounded(min(times), 3),
                "max_s": rounded(max(times), 3),
                "runs_s": [rounded(t, 3) for t in times],
            }
        )
    return {"settings": {"repeats": repeats, "poll_interval_ms": 5}, "rows": rows}


def _once(suite: Suite, spec: Any) -> float:
    server = start_server(spec, suite.log_dir, suite.pinning.server)
    try:
        return wait_healthy(server, timeout=120)
    finally:
        stop_server(server)
