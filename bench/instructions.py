"""Instructions per request, relaxml beside the limit, counted by callgrind: a repeatable figure.

    python bench/instructions.py [--requests 300] [--out DIR]

Requests per second over HTTP move by tens of percent from round to round on a shared virtual
machine; the number of instructions the CPU runs for one request does not. This diagnostic
drives each app in-process, one request at a time (no HTTP, no uvicorn: `ablation.py`'s
harness), under `valgrind --tool=callgrind`, twice, with `--requests` and with `--requests / 4`
requests: the difference, divided by the difference in requests, is the count for one request,
start-up excluded. The output check is off (`RELAXML_VALIDATE=off`): it samples by time, and
valgrind runs 50 times slower than the CPU. Writes `instructions.json` and `instructions.md`
to `--out` (`bench/results/` by default). Needs valgrind.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VARIANTS = (
    ("the limit (bench/limit.py)", "limit"),
    ("relaxml, sync `predict`", "sync"),
    ("relaxml, `async def predict`", "async"),
)


async def _drive(kind: str, tasks: int, requests: int) -> None:
    import ablation
    import payloads

    if kind == "limit":
        import limit

        app = limit.make_app()
    else:
        from models import Trivial, TrivialAsync

        from relaxml import configure_logging, create_app

        configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the run
        model = TrivialAsync if kind == "async" else Trivial
        app = create_app(model, data_dir=tempfile.mkdtemp(prefix="relaxml-instructions-"))
    body = payloads.predict_body(tasks)
    async with ablation.started(app):
        for _ in range(requests):
            await ablation._call(app, body)


def _count(kind: str, tasks: int, requests: int) -> int:
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [sys.executable, __file__, "--child", kind, "--tasks", str(tasks)]
    command += ["--requests", str(requests)]
    env = {**os.environ, "RELAXML_VALIDATE": "off"}
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--tasks", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(BENCH_DIR))
    if args.child:
        import gc

        gc.set_threshold(10_000, *gc.get_threshold()[1:])  # as `relaxml serve` runs
        asyncio.run(_drive(args.child, args.tasks, args.requests))
        return
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    rows = []
    for tasks in (1, 100):
        many = args.requests if tasks == 1 else max(40, args.requests // 5)
        few = many // 4
        counts = {}
        for name, kind in VARIANTS:
            per_request = (_count(kind, tasks, many) - _count(kind, tasks, few)) / (many - few)
            counts[kind] = per_request
            rows.append({"tasks": tasks, "variant": name, "instructions": round(per_request)})
        for row in rows[-len(VARIANTS) :]:
            kind = next(k for n, k in VARIANTS if n == row["variant"])
            row["limit_over_this"] = round(counts["limit"] / counts[kind], 2)
    commit = subprocess.run(
        ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit or "unknown",
        "requests": args.requests,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "instructions.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        "# Instructions per request, in-process (callgrind)",
        "",
        f"{result['date']}; one request at a time, no HTTP; the trivial model; output check off "
        f"(python bench/instructions.py). Commit {result['commit']}.",
        "",
        "| tasks/request | app | instructions per request | limit ÷ this |",
        "|---:|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['tasks']} | {row['variant']} | {row['instructions']:,} | "
            f"{row['limit_over_this']:.2f} |"
        )
    (args.out / "instructions.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
