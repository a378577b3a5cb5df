"""Ray's cost on one machine: `relaxml serve --engine local` against `--engine ray`.

The same trivial model (`bench/models.py:Trivial`) behind three servers started side by side:
`--engine local` (one uvicorn worker), `--engine local --workers 2`, and `--engine ray
--replicas 2` (a local Ray owned by the command; Serve's proxy in front of two replicas). The
load visits them in turns, round after round, so a disturbance on the machine hits each alike;
a figure is the median over rounds and a ratio the median of the per-round ratios. Nothing is
pinned to a core: Ray runs a proxy, a controller and the replicas as processes of its own.

    python bench/ray_serve.py [--rounds 3] [--seconds 5] [--out bench/results]

writes `ray-serve.md` and `ray-serve.json` under `--out`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import payloads
from common import REPO_DIR, ServerSpec, python, rounded, start_server, wait_healthy
from load import LoadGenerator
from report import load_average, machine, relaxml_source

NAME = "ray-serve"
CONNECTIONS = 8
BATCHES = (1, 100)
TARGET = "bench/models.py:Trivial"
LOCAL, LOCAL_2, RAY_2 = "local", "local --workers 2", "ray --replicas 2"


def specs(data_root: Path, ray_tmp: str) -> dict[str, ServerSpec]:
    """The three servers, each with its own data directory."""
    serve = [python(), "-m", "relaxml", "serve", TARGET, "--host", "{host}", "--port", "{port}"]
    serve += ["--log-level", "warning"]
    ray_env = {"RAY_TMPDIR": ray_tmp, "RAY_USAGE_STATS_ENABLED": "0"}
    return {
        LOCAL: ServerSpec("local", [*serve, "--data-dir", str(data_root / "local")]),
        LOCAL_2: ServerSpec(
            "local-2", [*serve, "--workers", "2", "--data-dir", str(data_root / "local-2")]
        ),
        RAY_2: ServerSpec(
            "ray-2",
            [
                *serve,
                "--engine",
                "ray",
                "--replicas",
                "2",
                "--num-cpus",
                "0.5",
                "--data-dir",
                str(data_root / "ray-2"),
            ],
            env=ray_env,
        ),
    }


def stop(process: subprocess.Popen[bytes], grace: float = 60.0) -> None:
    """SIGTERM the command itself (it stops its own Ray), SIGKILL its group after `grace`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=REPO_DIR / "bench" / "results")
    args = parser.parse_args()
    generator = LoadGenerator()
    started = time.time()
    loads = [load_average()]
    bodies = {n: payloads.predict_body(n) for n in BATCHES}
    samples: dict[tuple[str, int], list[float]] = {}
    p50: dict[tuple[str, int], list[float]] = {}
    startup: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="rsb") as tmp:
        servers = {}
        try:
            for name, spec in specs(
                Path(tmp) / "data", tempfile.mkdtemp(prefix="r", dir=tmp)
            ).items():
                servers[name] = start_server(spec, Path(tmp) / "logs", None)
                startup[name] = wait_healthy(servers[name], timeout=120)
            for round_no in range(args.rounds):
                for n, body in bodies.items():
                    for name, server in servers.items():
                        generator.run(server.url("/predict"), body, CONNECTIONS, 1.0)  # warm
                        result = generator.run(
                            server.url("/predict"), body, CONNECTIONS, args.seconds
                        )
                        if result.errors:
                            raise RuntimeError(f"{name}: {result.errors} errors")
                        samples.setdefault((name, n), []).append(result.requests_per_s)
                        p50.setdefault((name, n), []).append(result.p50_ms)
                print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            for server in servers.values():
                stop(server.process)
    loads.append(load_average())
    results = summarize(samples, p50, startup)
    results.update(
        date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(started)),
        seconds=round(time.time() - started),
        machine=machine(),
        source=relaxml_source(),
        load_generator=generator.version(),
        load_average=loads,
        settings={"rounds": args.rounds, "seconds": args.seconds, "connections": CONNECTIONS},
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{NAME}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{NAME}.md").write_text(markdown(results))
    print(markdown(results))
    return 0


def summarize(
    samples: dict[tuple[str, int], list[float]],
    p50: dict[tuple[str, int], list[float]],
    startup: dict[str, float],
) -> dict[str, Any]:
    """Medians per server and batch, and the per-round ratios' medians."""
    rows = [
        {
            "server": name,
            "tasks_per_request": n,
            "requests_per_s": rounded(statistics.median(values), 1),
            "p50_ms": rounded(statistics.median(p50[(name, n)]), 2),
        }
        for (name, n), values in samples.items()
    ]
    ratios = {}
    for n in BATCHES:
        for other in (LOCAL, LOCAL_2):
            pairs = zip(samples[(RAY_2, n)], samples[(other, n)], strict=True)
            ratios[f"ray_2 / {other} ({n} task{'s' if n > 1 else ''})"] = rounded(
                statistics.median(a / b for a, b in pairs), 2
            )
    return {
        "rows": rows,
        "ratios": ratios,
        "startup_s": {k: rounded(v, 1) for k, v in startup.items()},
    }


def markdown(results: dict[str, Any]) -> str:
    m, source = results["machine"], results["source"]
    settings = results["settings"]
    lines = [
        "# relaxml serve: --engine local against --engine ray, on one machine",
        "",
        f"- **Date:** {results['date']} ({results['seconds']} s)",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, "
        f"Python {m['python']}",
        f"- **relaxml commit:** {(source['commit'] or 'unknown')[:12]}",
        f"- **Load generator:** {results['load_generator']}, {settings['connections']} "
        f"connections, closed loop; {settings['rounds']} rounds of {settings['seconds']:g} s "
        "per server and batch, servers in turns; nothing pinned",
        f"- **Load average** at start / end: {results['load_average'][0][0]} / "
        f"{results['load_average'][1][0]}",
        "- **Model:** `bench/models.py:Trivial` (costs nothing: the figures are the servers' own)",
        "",
        "| server | tasks per request | requests/s (median) | p50 ms |",
        "|---|---:|---:|---:|",
    ]
    for row in results["rows"]:
        lines.append(
            f"| `--engine {row['server']}` | {row['tasks_per_request']} | "
            f"{row['requests_per_s']} | {row['p50_ms']} |"
        )
    lines += ["", "| ratio (median of per-round ratios) | value |", "|---|---:|"]
    lines += [f"| {name} | {value}x |" for name, value in results["ratios"].items()]
    lines += ["", "Seconds from start to the first healthy `/health`: " + ", ".join(
        f"`--engine {k}` {v}" for k, v in results["startup_s"].items()) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
