"""Offline runs: `relaxml predict --engine local` against `--engine ray`, side by side.

    python bench/ray_offline.py            # the runs below, fastest of 2; writes the results
    python bench/ray_offline.py --quick    # a few tasks, one run each, nothing written

Each run is the whole command, timed from start to exit, in a process of its own, over the same
tasks file: `--engine local`; `--engine ray --replicas 1`; `--engine ray --replicas 2`; and,
to show the fixed cost, `--engine ray` over one task (Ray's start-up, the actors' and the
shutdown). Two models: `Busy` does about 2 ms of pure-Python work per task (it holds the GIL:
one process uses one core), `Trivial` answers at once. The files the engines write must be the
same bytes (checked). The ratio is the local time divided by the run's time: above 1, the run
is faster than local. Results go to bench/results/ray-offline.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from report import load_average, machine, relaxml_source

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results"

if str(REPO_DIR) not in sys.path:
    sys.path.append(str(REPO_DIR))  # the tests' model-file prelude, imported as a package
from tests.support.model_files import CONFIG, PRELUDE  # noqa: E402 - after the path

MODELS = (
    PRELUDE
    + '''
class Busy(LabelStudioModel):
    """About 2 ms of pure-Python work per task (on the machine measured)."""
    model_version = "busy-1"
    def predict(self, tasks, context):
        out = []
        for task in tasks:
            total = sum(i * i for i in range(40_000 + len(task.data["text"])))
            out.append(choice("positive" if total % 2 else "negative"))
        return out

class Trivial(LabelStudioModel):
    """No work at all."""
    model_version = "trivial-1"
    def predict(self, tasks, context):
        return [choice("positive") for task in tasks]
'''
)

ENGINES = {
    "local": (),
    "ray, 1 replica": ("--engine", "ray", "--replicas", "1"),
    "ray, 2 replicas": ("--engine", "ray", "--replicas", "2"),
}


def run_once(work: Path, model: str, tasks: Path, args: tuple[str, ...], out: Path) -> float:
    """Seconds for one whole `relaxml predict` command."""
    env = {**os.environ, "PYTHONPATH": str(REPO_DIR), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    command = [
        sys.executable, "-m", "relaxml", "predict", f"{work / 'models.py'}:{model}",
        "--tasks", str(tasks), "--config", str(work / "config.xml"), "--out", str(out), *args,
    ]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return elapsed


def tasks_file(work: Path, count: int) -> Path:
    """A tasks file of `count` short texts."""
    path = work / f"tasks-{count}.json"
    path.write_text(json.dumps([{"data": {"text": f"text number {n}"}} for n in range(count)]))
    return path


def measure(work: Path, model: str, count: int, repeats: int) -> dict[str, Any]:
    """Every engine over the same `count` tasks, fastest of `repeats`; files compared."""
    tasks = tasks_file(work, count)
    rows = []
    outputs: dict[str, bytes] = {}
    for name, args in ENGINES.items():
        out = work / f"{model}-{name.replace(' ', '').replace(',', '-')}.json"
        times = [run_once(work, model, tasks, args, out) for _ in range(repeats)]
        outputs[name] = out.read_bytes()
        rows.append({"engine": name, "seconds": min(times), "runs_s": times})
    if len(set(outputs.values())) != 1:
        raise RuntimeError(f"{model}: the engines wrote different files")
    local = rows[0]["seconds"]
    for row in rows:
        row["ratio"] = round(local / row["seconds"], 2)
        row["tasks_per_s"] = round(count / row["seconds"], 1)
    return {"model": model, "tasks": count, "rows": rows, "same_file": True}


def markdown(results: dict[str, Any]) -> str:
    """The results as the Markdown page docs quote."""
    m = results["machine"]
    lines = [
        "# Offline runs: `relaxml predict --engine local` vs `--engine ray`",
        "",
        f"{results['date']}, {m['cpu']}, {m['cores_usable']} usable CPUs, {m['ram_gib']} GiB, "
        f"Python {m['python']}, Ray {results['ray']}, relaxml commit "
        f"{(results['relaxml']['commit'] or 'unknown')[:12]}; load average before the run "
        f"{results['load_average']}. Whole commands, start to exit, fastest of "
        f"{results['repeats']}. Ratio = local time / the run's time (above 1: faster than "
        "local). Every engine wrote the same bytes (checked).",
        "",
        "| model | tasks | engine | seconds | tasks/s | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for part in results["runs"]:
        for row in part["rows"]:
            lines.append(
                f"| {part['model']} | {part['tasks']} | {row['engine']} | "
                f"{row['seconds']:.2f} | {row['tasks_per_s']} | **{row['ratio']}x** |"
            )
    fixed = results["fixed_cost_s"]
    lines += [
        "",
        f"Fixed cost of `--engine ray` (one task: Ray's start-up, the actors, the shutdown): "
        f"{fixed:.2f} s, against {results['local_one_task_s']:.2f} s for `--engine local`.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few tasks, nothing written")
    quick = parser.parse_args().quick
    repeats = 1 if quick else 2
    sizes = {"Busy": 40 if quick else 4000, "Trivial": 100 if quick else 10_000}
    import ray

    with tempfile.TemporaryDirectory(prefix="relaxml-bench-") as name:
        work = Path(name)
        (work / "models.py").write_text(MODELS)
        (work / "config.xml").write_text(CONFIG)
        average = load_average()
        runs = [measure(work, model, count, repeats) for model, count in sizes.items()]
        one = tasks_file(work, 1)
        ray_args = ENGINES["ray, 1 replica"]
        fixed = min(
            run_once(work, "Trivial", one, ray_args, work / "one.json") for _ in range(repeats)
        )
        local_one = min(run_once(work, "Trivial", one, (), work / "one.json") for _ in range(2))
    results = {
        "date": date.today().isoformat(),
        "machine": machine(),
        "relaxml": relaxml_source(),
        "ray": ray.__version__,
        "load_average": average,
        "repeats": repeats,
        "runs": runs,
        "fixed_cost_s": round(fixed, 2),
        "local_one_task_s": round(local_one, 2),
    }
    page = markdown(results)
    print(page)
    if not quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "ray-offline.json").write_text(json.dumps(results, indent=1) + "\n")
        (RESULTS / "ray-offline.md").write_text(page)


if __name__ == "__main__":
    main()
