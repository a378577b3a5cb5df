"""The benchmark suite runs end to end in quick mode and writes sane results (no timings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = {"overhead", "responsiveness", "memory", "startup"}


def test_quick_run_writes_json_and_markdown_for_every_benchmark(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RELAXML_BENCH_INCUMBENT"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "bench/run.py", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["mode"] == "quick"
    assert set(results["benchmarks"]) == BENCHMARKS
    for name, data in results["benchmarks"].items():
        assert "error" not in data, (name, data)
        measured = {row["server"] for row in data["rows"] if row["measured"]}
        assert "relaxml" in measured, name
        unmeasured = [row for row in data["rows"] if row["server"] == "incumbent"]
        assert unmeasured, name
        assert not any(row["measured"] for row in unmeasured), name
    assert results["incumbent"] == "not measured (no checkout given)"

    overhead = results["benchmarks"]["overhead"]
    for row in overhead["rows"]:
        if row["measured"]:
            assert row["requests_per_s"] > 0
            assert row["errors"] == 0
            assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert overhead["ratios"]["vs_floor_1"]["median"] > 0
    assert overhead["ratios"]["vs_floor_100"]["median"] > 0

    for row in results["benchmarks"]["responsiveness"]["rows"]:
        if row["measured"]:
            assert row["bulk_ok"]
            assert row["overlapped"]
            assert row["health_requests"] > 0
    for row in results["benchmarks"]["memory"]["rows"]:
        if row["measured"]:
            assert 0 < row["idle_rss_mib"] <= row["peak_rss_mib"]
    for row in results["benchmarks"]["startup"]["rows"]:
        if row["measured"]:
            assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]

    keys = {target["key"] for target in results["targets"]}
    assert {"overhead-floor-1", "overhead-floor-100", "health-p99-Slow"} <= keys
    for key in ("overhead-incumbent-1", "overhead-incumbent-100"):
        target = next(t for t in results["targets"] if t["key"] == key)
        assert target["met"] is None

    markdown = (tmp_path / "latest.md").read_text()
    for heading in ("## Targets", "## 1. Framework overhead", "## 2. Responsiveness"):
        assert heading in markdown
    for heading in ("## 5. Memory", "## 6. Start-up"):
        assert heading in markdown
    assert "not measured (no checkout given)" in markdown
