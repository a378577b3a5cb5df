"""The benchmark suite runs end to end in quick mode and writes sane results (no timings).

The delivery benchmark needs Label Studio 1.23.2 (tests/support/labelstudio.py installs it; CI
does): when it is installed the benchmark must run against it, else say "not measured".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = {
    "overhead",
    "responsiveness",
    "batching",
    "delivery",
    "memory",
    "startup",
    "interactive",
}
WITH_INCUMBENT = {"overhead", "responsiveness", "memory", "startup"}


def test_quick_run_writes_json_and_markdown_for_every_benchmark(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "RELAXML_BENCH_INCUMBENT"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "bench/run.py", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((tmp_path / "latest.json").read_text())
    assert results["mode"] == "quick"
    assert set(results["benchmarks"]) == BENCHMARKS
    for name, data in results["benchmarks"].items():
        assert "error" not in data, (name, data)
        if name == "delivery" and not label_studio_installed():
            continue
        measured = {row["server"] for row in data["rows"] if row["measured"]}
        assert "relaxml" in measured, name
        if name not in WITH_INCUMBENT:
            continue
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
    for key in ("vs_limit_1", "vs_limit_100", "async_vs_limit_1", "async_vs_limit_100"):
        assert overhead["ratios"][key]["median"] > 0
    assert overhead["ratios"]["vs_floor_1"]["median"] > 0
    assert overhead["ratios"]["vs_floor_100"]["median"] > 0
    assert overhead["ratios"]["loaded_vs_limit_1"]["median"] > 0
    assert overhead["ratios"]["loaded_vs_floor_1"]["median"] > 0
    assert {(row["model"], row["server"]) for row in overhead["rows"] if row["measured"]} == {
        ("Trivial", "relaxml"),
        ("Trivial", "relaxml-async"),
        ("Trivial", "starlette-limit"),
        ("Trivial", "starlette-floor"),
        ("Loaded", "relaxml"),
        ("Loaded", "starlette-limit"),
        ("Loaded", "starlette-floor"),
    }
    assert overhead["settings"]["loaded_constructor_ms"] > 0

    for row in results["benchmarks"]["responsiveness"]["rows"]:
        if row["measured"]:
            assert row["bulk_ok"]
            assert row["overlapped"]
            assert row["health_requests"] > 0
    batching = results["benchmarks"]["batching"]
    assert {row["batching"] for row in batching["rows"]} == {"off", "on", "on-64"}
    for row in batching["rows"]:
        assert row["tasks_per_s"] > 0
        assert row["errors"] == 0
        assert row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    assert batching["ratio"]["median"] > 0
    on = next(row for row in batching["rows"] if row["batching"] == "on")
    assert on["max_batch_size"] == 32
    assert 0 < on["of_capacity"] == round(on["tasks_per_s"] / on["capacity_tasks_per_s"], 3)

    delivery = results["benchmarks"]["delivery"]
    paths = {row["path"]: row for row in delivery["rows"]}
    assert set(paths) == {"limit", "background", "direct", "inline"}
    if label_studio_installed():
        tasks = delivery["settings"]["tasks"]
        for row in paths.values():
            assert row["measured"]
            assert row["stored"] == tasks
            assert row["stored_exactly_once"]
        assert paths["background"]["predict_calls"] == 1
        assert 0 < paths["background"]["predict_s"] <= paths["background"]["action_s"]
        assert paths["background"]["done_s"] > 0
        assert paths["inline"]["chunks"] == tasks // delivery["settings"]["inline_chunk"]
        assert delivery["ratio_inline_vs_background"] > 0
        assert paths["limit"]["server"] == "label-studio"
        assert paths["limit"]["limit_s"] > 0
        assert paths["limit"]["imports"] >= 1
        for row in (paths["background"], paths["direct"]):
            assert row["imports"] >= 1  # relaxml's debug log has a line per import
            assert row["import_size_max"] <= paths["limit"]["import_size"]
        assert all(value > 0 for value in delivery["vs_limit"].values())
    else:
        assert not any(row["measured"] for row in paths.values())
        assert "not measured" in delivery["note"]

    for row in results["benchmarks"]["memory"]["rows"]:
        if row["measured"]:
            assert 0 < row["idle_rss_mib"] <= row["peak_rss_mib"]
    for row in results["benchmarks"]["startup"]["rows"]:
        if row["measured"]:
            assert 0 < row["min_s"] <= row["median_s"] <= row["max_s"]

    interactive = results["benchmarks"]["interactive"]["rows"][0]
    assert interactive["measured"]
    for loop in ("interactive", "health"):
        for phase in ("idle", "during"):
            figures = interactive[phase][loop]
            assert figures["requests"] > 0
            assert figures["errors"] == 0
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert interactive["predicted_during"] > 0

    keys = {target["key"] for target in results["targets"]}
    assert {
        "overhead-vs-limit-1",
        "overhead-vs-limit-100",
        "overhead-async-vs-limit-1",
        "overhead-floor-1",
        "overhead-floor-100",
        "health-p99-Slow",
        "batching-on-vs-off",
        "batching-capacity",
        "delivery-predict",
        "delivery-vs-limit-background-from-receipt",
        "delivery-vs-limit-direct",
        "interactive-interactive-p99",
        "interactive-health-p99",
    } <= keys
    batching_target = next(t for t in results["targets"] if t["key"] == "batching-on-vs-off")
    assert batching_target["met"] is not None
    for key in (
        "overhead-incumbent-1",
        "overhead-incumbent-100",
        "overhead-loaded-incumbent-1",
        "overhead-template-1",
        "overhead-template-100",
    ):
        target = next(t for t in results["targets"] if t["key"] == key)
        assert target["met"] is None

    markdown = (tmp_path / "latest.md").read_text()
    for heading in ("## Targets", "## 1. Framework overhead", "## 2. Responsiveness"):
        assert heading in markdown
    for heading in ("## 3. Micro-batching", "## 4. Delivery to Label Studio"):
        assert heading in markdown
    for heading in ("## 5. Memory", "## 6. Start-up", "## 7. Interactive first"):
        assert heading in markdown
    assert "not measured (no checkout given)" in markdown


def label_studio_installed() -> bool:
    """Whether the Label Studio the e2e tests use is installed (the delivery benchmark's)."""
    from tests.support.labelstudio import default_venv

    return (default_venv() / "bin" / "label-studio").exists()


def test_the_ablation_runs_every_variant(tmp_path: Path) -> None:
    command = [sys.executable, "bench/ablation.py", "--rounds", "1", "--requests", "20"]
    done = subprocess.run(
        [*command, "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "ablation-1.json").read_text())
    assert result["rows"][0]["variant"] == "relaxml, everything on"
    assert len(result["rows"]) == 7
    assert all(row["us_per_request"] > 0 for row in result["rows"])
    assert "| the limit (bench/limit.py) |" in (tmp_path / "ablation-1.md").read_text()
