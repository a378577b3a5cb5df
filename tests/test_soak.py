"""The soak benchmark in its short mode: a real server under 20 clients for 5 s leaks nothing.

No time targets: only that every answer was the designed one, that memory (within 10%),
descriptors and threads (but for the server's periodic workers) did not grow after the
warm-up, that background delivery was exactly once, and that the server is UP at the end
(bench/soak.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_short_soak_has_no_errors_and_no_growth(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "bench/soak.py", "--short", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    document = json.loads((tmp_path / "soak.json").read_text())
    results = document["results"]
    assert document["mode"] == "short"
    assert results["requests"] > 0, output
    assert all(row["requests"] > 0 for row in results["by_kind"].values()), results["by_kind"]
    assert results["errors"] == 0, results["error_examples"]
    assert results["rss_growth"] <= 0.10, (results["after_warmup"], results["at_end"])
    assert results["fd_growth"] <= 0, (results["after_warmup"], results["at_end"])
    # Threads: at most the workers the server's periodic loops hold when counted (THREAD_SLACK).
    assert results["thread_growth"] <= 2, (results["after_warmup"], results["at_end"])
    assert results["settled_at_end"]["settled"], results["settled_at_end"]
    assert results["background"]["tasks_queued"] > 0
    assert results["background"]["not_delivered"] == 0, results["background"]
    assert results["background"]["delivered_twice"] == 0, results["background"]
    assert results["alive_at_end"]
    assert results["health_at_end"] == "UP"
    assert results["problems"] == [], results["problems"]
    assert done.returncode == 0, output
    assert "# Soak" in (tmp_path / "soak.md").read_text()
