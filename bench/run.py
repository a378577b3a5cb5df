"""Run relaxml's benchmark suite and write bench/results/latest.json and latest.md.

    python bench/run.py                      # the full suite, a few minutes on 2 cores
    python bench/run.py --quick              # a smoke run at tiny scale (seconds)
    python bench/run.py --only overhead      # one benchmark (repeat --only for more)
    python bench/run.py --incumbent PATH     # also measure a label-studio-ml-backend checkout

The incumbent checkout may also be given as RELAXML_BENCH_INCUMBENT. Every server listens on
127.0.0.1 only and is stopped (by its PID) when its benchmark ends.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import batching
import delivery
import interactive
import memory
import overhead
import report
import responsiveness
import startup
from common import BENCH_DIR, Pinning
from incumbent import ENV_VAR, IncumbentError, checkout_from, prepare
from load import LoadGenerator
from suite import Suite

BENCHMARKS: dict[str, ModuleType] = {
    "overhead": overhead,
    "responsiveness": responsiveness,
    "batching": batching,
    "delivery": delivery,
    "memory": memory,
    "startup": startup,
    "interactive": interactive,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="relaxml's benchmark suite.",
        epilog=f"The incumbent checkout may also be given in {ENV_VAR}.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run at tiny scale")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (one of {', '.join(BENCHMARKS)}); repeatable",
    )
    parser.add_argument(
        "--incumbent", metavar="PATH", help="a checkout of HumanSignal/label-studio-ml-backend"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=BENCH_DIR / "results",
        help="directory for latest.json and latest.md (default: bench/results)",
    )
    parser.add_argument(
        "--load-generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="wrk when installed (auto), or the Python client",
    )
    parser.add_argument("--keep", action="store_true", help="keep the server logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_start = report.load_average()
    machine = report.machine()  # before this process pins itself to the load generator's CPU
    workdir = Path(tempfile.mkdtemp(prefix="relaxml-bench-"))
    pinning = Pinning.detect()
    if pinning.client is not None:
        os.sched_setaffinity(0, pinning.client)  # this process is the Python load generator
    suite = Suite(
        quick=args.quick,
        workdir=workdir,
        pinning=pinning,
        load=LoadGenerator(args.load_generator, pinning.client),
    )
    say(f"relaxml benchmarks ({'quick' if args.quick else 'full'}), logs in {workdir}")
    checkout = checkout_from(args.incumbent)
    if checkout is not None:
        try:
            suite.incumbent = prepare(checkout, workdir / "incumbent", workdir / "pip.log")
        except IncumbentError as exc:
            suite.incumbent_note = f"not measured: {exc}"
            say(f"  incumbent {suite.incumbent_note}")
    benchmarks: dict[str, Any] = {}
    failed = False
    for name in args.only or list(BENCHMARKS):
        say(f"- {name}")
        t0 = time.perf_counter()
        try:
            benchmarks[name] = BENCHMARKS[name].run(suite)
        except Exception as exc:
            failed = True
            benchmarks[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        benchmarks[name]["seconds"] = round(time.perf_counter() - t0, 1)
    results = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "quick" if args.quick else "full",
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine,
        "relaxml": report.relaxml_source(),
        "load_generator": {
            "name": suite.load.name,
            "version": suite.load.version(),
            "pinning": pinning.describe(),
        },
        "load_average": {"start": load_start, "end": report.load_average()},
        "incumbent": suite.incumbent.describe() if suite.incumbent else suite.incumbent_note,
        "incumbent_details": _incumbent_details(suite),
        "benchmarks": benchmarks,
        "targets": report.targets(benchmarks),
    }
    problems = sanity(results)
    json_path, md_path = report.write(results, args.out)
    say(f"wrote {json_path} and {md_path}")
    for target in results["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        say(f"  {target['what']}: {target['value']} ({verdict})")
    for problem in problems:
        say(f"  problem: {problem}")
    if failed or problems:
        say(f"server logs kept in {workdir}")
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def _incumbent_details(suite: Suite) -> dict[str, Any] | None:
    inc = suite.incumbent
    if inc is None:
        return None
    return {
        "commit": inc.commit,
        "dockerfile_cmd": inc.dockerfile_cmd,
        "command": inc.spec("Trivial").display(),
        "versions": inc.versions,
    }


def sanity(results: dict[str, Any]) -> list[str]:
    """What looks wrong in the results: errors, failed requests, empty measurements."""
    problems = []
    for name, data in results["benchmarks"].items():
        if "error" in data:
            problems.append(f"{name}: {data['error']}")
            continue
        for row in data.get("rows", []):
            if not row.get("measured"):
                continue
            where = f"{name}/{row['server']}"
            if row.get("errors") or row.get("health_errors") or row.get("load_errors"):
                problems.append(f"{where}: requests failed")
            if row.get("bulk_ok") is False:
                problems.append(f"{where}: the bulk request failed")
            if name == "overhead" and not row.get("requests_per_s"):
                problems.append(f"{where}: no requests measured")
            if name == "responsiveness" and not row.get("overlapped"):
                problems.append(f"{where}: /health was not measured during the bulk request")
            if name == "batching" and not row.get("tasks_per_s"):
                problems.append(f"{where}: no requests measured (batching {row['batching']})")
            if name == "delivery" and not row.get("stored_exactly_once"):
                problems.append(f"{where}: Label Studio does not hold one prediction per task")
    return problems


def say(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
