"""Benchmark 1, framework overhead: the same model behind each server.

Two scenarios. The trivial model (`Trivial`) costs nothing to construct or to call, so the
figures are the frameworks' own cost, at 1 and 100 tasks per request. The model that loads
weights (`Loaded`) builds a lookup table in its constructor (`trivial.load_table`, about
20 ms of pure-Python work); relaxml and the floor construct it once, at start-up, while the
incumbent's framework constructs the model class for every request (its real behaviour); it
is measured at 1 task per request.

Within a scenario all servers run at once, idle but one; the load visits them in turns, round
after round, so a disturbance on the machine hits every server alike. Each figure is the
median over rounds, and each ratio the median of the per-round ratios (same round, measured
seconds apart).
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import payloads
import trivial
from common import Server, rounded, start_server, stop_server, wait_healthy
from load import LoadResult, post_json
from suite import FLOOR, INCUMBENT, INCUMBENT_TEMPLATE, LIMIT, RELAXML, RELAXML_ASYNC, Suite

NAME = "overhead"
BATCHES = (1, 100)
CONNECTIONS = 8
# Each scenario: the model served and the tasks per request it is measured at.
SCENARIOS = {"Trivial": BATCHES, "Loaded": (1,)}
# Ratio keys: the trivial model's keep their names (vs_floor_1, ...); others get a prefix.
PREFIX = {"Trivial": "", "Loaded": "loaded_"}


def run(suite: Suite) -> dict[str, Any]:
    rounds = suite.scale(1, 5)
    warmup = suite.scale(0, 1)
    seconds = suite.scale(1, 4)
    bodies = {n: payloads.predict_body(n) for n in BATCHES}
    rows: list[dict[str, Any]] = []
    ratios: dict[str, Any] = {}
    notes: dict[str, str | None] = {}
    for model, batches in SCENARIOS.items():
        specs = suite.servers(model, limit=True)
        scenario = {n: bodies[n] for n in batches}
        samples, note = _scenario(suite, specs, scenario, rounds, warmup, seconds)
        with_incumbent = suite.incumbent is not None and note is None
        rows += [_row(name, model, n, samples.get((name, n))) for name in specs for n in batches]
        ratios.update(_ratios(samples, batches, with_incumbent, PREFIX[model]))
        notes[model] = None if with_incumbent else note or suite.incumbent_note
    return {
        "settings": {
            "connections": CONNECTIONS,
            "rounds": rounds,
            "seconds_per_round": seconds,
            "warmup_seconds": warmup,
            "tasks_per_request": list(BATCHES),
            "scenarios": {model: list(batches) for model, batches in SCENARIOS.items()},
            "body_bytes": {str(n): len(b) for n, b in bodies.items()},
            "loaded_constructor_ms": rounded(constructor_ms(), 1),
            "loaded_table_entries": trivial.TABLE_ENTRIES,
        },
        "rows": rows,
        "ratios": ratios,
        "incumbent": notes["Trivial"],
        "incumbent_loaded": notes["Loaded"],
    }


def constructor_ms(repeats: int = 5) -> float:
    """The median time of the loaded model's constructor work, measured in this process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        trivial.load_table()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _scenario(
    suite: Suite,
    specs: dict[str, Any],
    bodies: dict[int, bytes],
    rounds: int,
    warmup: int,
    seconds: int,
) -> tuple[dict[tuple[str, int], list[LoadResult]], str | None]:
    """Start every server of one scenario, load them in turns, stop them; the samples."""
    samples: dict[tuple[str, int], list[LoadResult]] = {}
    servers: dict[str, Server] = {}
    note: str | None = None
    try:
        for name, spec in specs.items():
            if spec is not None:
                servers[name] = start_server(spec, suite.log_dir, suite.pinning.server)
        note = _ready(servers, bodies)
        for round_no in range(rounds):
            order = list(servers)
            order = order[round_no % len(order) :] + order[: round_no % len(order)]
            for n, body in bodies.items():
                for name in order:
                    url = servers[name].url("/predict")
                    if warmup:
                        suite.load.run(url, body, CONNECTIONS, warmup)
                    result = suite.load.run(url, body, CONNECTIONS, seconds)
                    samples.setdefault((name, n), []).append(result)
    finally:
        for server in servers.values():
            with contextlib.suppress(Exception):
                stop_server(server)
    return samples, note


def _ready(servers: dict[str, Server], bodies: dict[int, bytes]) -> str | None:
    """Wait for every server and check its answers; an incumbent that fails is left out."""
    for name in list(servers):
        try:
            wait_healthy(servers[name])
            for n, body in bodies.items():
                check_answer(servers[name], body, n)
        except Exception as exc:
            if name not in (INCUMBENT, INCUMBENT_TEMPLATE):
                raise
            stop_server(servers.pop(name))
            return f"not measured: {str(exc).splitlines()[0][:200]}"
    return None


def check_answer(server: Server, body: bytes, tasks: int) -> None:
    """One request first: the server must answer 200 with one right prediction per task."""
    status, answer = post_json(server.port, "/predict", body)
    results = answer.get("results") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(results, list) or len(results) != tasks:
        raise RuntimeError(f"{server.spec.name} answered {status}: {str(answer)[:300]}")
    first = results[0]
    if first.get("model_version") != trivial.MODEL_VERSION or len(first.get("result", [])) != 1:
        raise RuntimeError(f"{server.spec.name} answered an unexpected prediction: {first}")


def _row(name: str, model: str, tasks: int, results: list[LoadResult] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"server": name, "model": model, "tasks_per_request": tasks}
    if not results:
        return {**row, "measured": False}
    rps = statistics.median(r.requests_per_s for r in results)
    return {
        **row,
        "measured": True,
        "requests_per_s": rounded(rps, 1),
        "tasks_per_s": rounded(rps * tasks, 1),
        "p50_ms": rounded(statistics.median(r.p50_ms for r in results), 3),
        "p95_ms": rounded(statistics.median(r.p95_ms for r in results), 3),
        "p99_ms": rounded(statistics.median(r.p99_ms for r in results), 3),
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
        "rounds": [r.to_dict() for r in results],
    }


def _ratios(
    samples: dict[tuple[str, int], list[LoadResult]],
    batches: tuple[int, ...],
    with_incumbent: bool,
    prefix: str,
) -> dict[str, Any]:
    ratios: dict[str, Any] = {}
    pairs = (
        (RELAXML, LIMIT, "vs_limit"),
        (RELAXML_ASYNC, LIMIT, "async_vs_limit"),
        (RELAXML, FLOOR, "vs_floor"),
        (RELAXML, INCUMBENT, "vs_incumbent"),
        (RELAXML, INCUMBENT_TEMPLATE, "vs_template"),
    )
    for n in batches:
        for name, other, key in pairs:
            if other in (INCUMBENT, INCUMBENT_TEMPLATE) and not with_incumbent:
                continue
            ours, theirs = samples.get((name, n), []), samples.get((other, n), [])
            if not ours or not theirs:
                continue
            per_round = [
                a.requests_per_s / b.requests_per_s
                for a, b in zip(ours, theirs, strict=True)
                if b.requests_per_s > 0
            ]
            ratios[f"{prefix}{key}_{n}"] = {
                "median": rounded(statistics.median(per_round), 3) if per_round else None,
                "per_round": [rounded(r, 3) for r in per_round],
            }
    return ratios
