"""Where relaxml's time per request goes: each of its checks switched off in turn, in-process.

    python bench/ablation.py [--tasks 1] [--rounds 5] [--requests 4000] [--out DIR]

A diagnostic, not a target: it drives the ASGI app directly (no HTTP, no uvicorn), one request
at a time, with `bench/models.py:TrivialAsync` (no thread hop) and the access log written to
/dev/null through relaxml's own logging set-up. Each variant runs in a process of its own with
one more part of relaxml's work replaced by a no-op (the access line; the request metrics; the
label-config check of the output; the check of the model's output; the JSON depth check), so
the step from one variant to the next is what that part costs. The limit (`bench/limit.py`'s
app) runs the same way. Variants take turns, round after round; each figure is the fastest
round (the least disturbed). Writes `ablation.json` and `ablation.md` to `--out`
(`bench/results/` by default).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
VARIANTS = (
    ("relaxml, everything on", ""),
    ("without the access line", "access"),
    ("and without request metrics", "access,metrics"),
    ("and without the label-config check", "access,metrics,check"),
    ("and without normalizing the output", "access,metrics,check,normalize"),
    ("and without the JSON depth check", "access,metrics,check,normalize,depth"),
    ("the limit (bench/limit.py)", "limit"),
)


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/predict",
        "raw_path": b"/predict",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
        "state": {},
    }


async def _call(app: Any, body: bytes) -> None:
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(body), receive, send)
    if sent[0]["status"] != 200:
        raise RuntimeError(f"answered {sent[0]['status']}")


def _app(off: set[str]) -> Any:
    if "limit" in off:
        import limit

        return limit.make_app()
    from models import TrivialAsync

    if "metrics" in off:
        from relaxml import _metrics

        _metrics.Metrics.inc_series = lambda *a, **k: None  # type: ignore[method-assign]
        _metrics.Metrics.observe_series = lambda *a, **k: None  # type: ignore[method-assign]
    if "check" in off:
        from relaxml._server import outputcheck

        outputcheck.OutputCheck.__call__ = lambda *a, **k: None  # type: ignore[method-assign]
    if "normalize" in off:
        from relaxml._server import modelcall

        modelcall.normalize = lambda output, count, **k: output  # type: ignore[assignment]
    if "depth" in off:
        from relaxml._server import bodies

        bodies._deep = lambda body, encoding, value: False  # type: ignore[assignment]
    from relaxml import configure_logging, create_app

    configure_logging("INFO", stream=open(os.devnull, "w"))  # noqa: SIM115 - for the run
    if "access" in off:
        import logging

        logging.getLogger("relaxml.access").setLevel(logging.WARNING)
    return create_app(TrivialAsync, data_dir=tempfile.mkdtemp(prefix="relaxml-ablation-"))


@contextlib.asynccontextmanager
async def started(app: Any) -> AsyncIterator[Any]:
    """`app` with its lifespan started (the model built), shut down on the way out."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    await outbox.get()
    try:
        yield app
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan


async def _measure(off: set[str], tasks: int, requests: int) -> float:
    import payloads

    body = payloads.predict_body(tasks)
    async with started(_app(off)) as app:
        for _ in range(300):
            await _call(app, body)
        start = time.perf_counter()
        for _ in range(requests):
            await _call(app, body)
        elapsed = (time.perf_counter() - start) / requests
    return elapsed * 1e6


def _child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(BENCH_DIR))
    import gc

    gc.set_threshold(10_000, *gc.get_threshold()[1:])  # as `relaxml serve` runs (docs/cli.md)
    off = set(filter(None, args.off.split(",")))
    print(json.dumps(asyncio.run(_measure(off, args.tasks, args.requests))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results")
    parser.add_argument("--off", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.off is not None:
        _child(args)
        return
    cpu = str(min(os.sched_getaffinity(0)))
    pin = ["taskset", "-c", cpu] if shutil.which("taskset") else []  # one core, as the suite
    samples: dict[str, list[float]] = {name: [] for name, _ in VARIANTS}
    for _ in range(args.rounds):
        for name, off in VARIANTS:
            command = [*pin, sys.executable, __file__, "--off", off, "--tasks", str(args.tasks)]
            command += ["--requests", str(args.requests)]
            out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
            samples[name].append(float(out.strip().splitlines()[-1]))
    best = {name: min(values) for name, values in samples.items()}
    rows = []
    previous = None
    for name, _ in VARIANTS:
        step = None if previous is None or name.startswith("the limit") else previous - best[name]
        rows.append({"variant": name, "us_per_request": round(best[name], 1), "saves_us": step})
        previous = best[name]
    result = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "tasks_per_request": args.tasks,
        "rounds": args.rounds,
        "requests_per_round": args.requests,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"ablation-{args.tasks}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# Where the time goes, {args.tasks} task(s) per request",
        "",
        f"{result['date']}; in-process, one request at a time, `TrivialAsync`; fastest of "
        f"{args.rounds} rounds of {args.requests} requests (python bench/ablation.py).",
        "",
        "| variant | µs per request | this step saves µs |",
        "|---|---:|---:|",
    ]
    for row in rows:
        saves = "" if row["saves_us"] is None else f"{row['saves_us']:.1f}"
        lines.append(f"| {row['variant']} | {row['us_per_request']:.1f} | {saves} |")
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
