"""Benchmark 3, micro-batching: many single-task clients, batching off and on.

The model costs a fixed 20 ms per `predict` call plus 0.2 ms per task, waiting with the GIL
released (one forward pass of native inference code: the fixed part dominates a small batch).
relaxml serves it three times: with its defaults (`Batched`: one call per request, one call at
a time) and with micro-batching on (`batch_timeout = 0.01`), calls of at most 32 tasks
(`MicroBatched`) and of at most 64 (`MicroBatched64`). The load is 64 keep-alive connections,
each sending a one-task request as soon as its previous answer arrives (64 annotators' editors
at once, or one scripted client), closed loop. The servers take turns, round after round.

The model's *capacity* at a batch size is the tasks/s of full batches back to back, measured
by calling `predict` in this process, with no server. Batching on reaches it only if a full
batch is waiting whenever a call returns: with closed-loop clients that takes at least twice
as many clients as the batch size (one batch fills while the other runs). With 64 clients and
batches of 64, every client waits inside the running call, so the model idles while 64 answers
go out and 64 requests come in, whatever the server; that row is shown to say so.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from typing import Any

import models
import payloads
import trivial
from common import Server, rounded, start_server, stop_server, wait_healthy
from load import LoadResult, post_json
from suite import RELAXML, Suite, relaxml_spec

NAME = "batching"
CONNECTIONS = 64
MODES = {"off": "Batched", "on": "MicroBatched", "on-64": "MicroBatched64"}
TARGET = 5.0
"""Batching on ÷ off, tasks/s."""
CAPACITY_TARGET = 0.9
"""Batching on ÷ the model's capacity at its `max_batch_size`."""


def run(suite: Suite) -> dict[str, Any]:
    rounds = suite.scale(1, 3)
    warmup = suite.scale(0, 1)
    seconds = suite.scale(1, 5)
    body = payloads.predict_body(1)
    # Requests still queued when a run stops (64 at most, 20 ms each with batching off) are
    # answered into closed connections; let them drain before the next run.
    drain = CONNECTIONS * (trivial.BATCH_CALL_SECONDS + trivial.BATCH_TASK_SECONDS) + 0.2
    samples: dict[str, list[LoadResult]] = {mode: [] for mode in MODES}
    servers: dict[str, Server] = {}
    try:
        for mode, model in MODES.items():
            spec = relaxml_spec(model, suite.workdir / f"relaxml-data-{model}")
            servers[mode] = start_server(spec, suite.log_dir, suite.pinning.server)
        for server in servers.values():
            wait_healthy(server)
            _check(server, body)
        for round_no in range(rounds):
            order = list(MODES) if round_no % 2 == 0 else list(reversed(MODES))
            for mode in order:
                url = servers[mode].url("/predict")
                if warmup:
                    suite.load.run(url, body, CONNECTIONS, warmup)
                    time.sleep(drain)
                samples[mode].append(suite.load.run(url, body, CONNECTIONS, seconds))
                time.sleep(drain)
    finally:
        for server in servers.values():
            with contextlib.suppress(Exception):
                stop_server(server)
    sizes = {mode: _max_batch_size(model) for mode, model in MODES.items()}
    capacity = {
        size: capacity_tasks_per_s(size, suite.scale(0.5, 3.0)) for size in set(sizes.values())
    }
    rows = [_row(mode, MODES[mode], samples[mode], sizes[mode], capacity) for mode in MODES]
    per_round = [
        on.requests_per_s / off.requests_per_s
        for on, off in zip(samples["on"], samples["off"], strict=True)
        if off.requests_per_s > 0
    ]
    return {
        "settings": {
            "connections": CONNECTIONS,
            "tasks_per_request": 1,
            "rounds": rounds,
            "seconds_per_round": seconds,
            "warmup_seconds": warmup,
            "call_ms": trivial.BATCH_CALL_SECONDS * 1000,
            "task_ms": trivial.BATCH_TASK_SECONDS * 1000,
            "batch_timeout_s": 0.01,
            "max_batch_size": sizes["on"],
        },
        "rows": rows,
        "ratio": {
            "median": rounded(statistics.median(per_round), 2) if per_round else None,
            "per_round": [rounded(r, 2) for r in per_round],
        },
        "capacity": {str(size): rounded(tps, 1) for size, tps in sorted(capacity.items())},
        "target": TARGET,
        "capacity_target": CAPACITY_TARGET,
    }


def capacity_tasks_per_s(size: int, seconds: float) -> float:
    """Tasks/s of the benchmark's model fed full batches of `size` back to back."""
    tasks = [payloads.task(i) for i in range(size)]
    calls = 0
    start = time.perf_counter()
    while True:
        trivial.batch_wait(len(tasks))
        [trivial.prediction(t["id"], t["data"]) for t in tasks]
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return calls * size / elapsed


def _max_batch_size(model: str) -> int:
    size = getattr(models, model).max_batch_size
    return int(size) if size else 1


def _check(server: Server, body: bytes) -> None:
    status, answer = post_json(server.port, "/predict", body)
    results = answer.get("results") if isinstance(answer, dict) else None
    if status != 200 or not isinstance(results, list) or len(results) != 1:
        raise RuntimeError(f"{server.spec.name} answered {status}: {str(answer)[:300]}")


def _row(
    mode: str, model: str, results: list[LoadResult], size: int, capacity: dict[int, float]
) -> dict[str, Any]:
    tps = statistics.median(r.requests_per_s for r in results)
    of_capacity = tps / capacity[size] if capacity.get(size) else None
    return {
        "server": RELAXML,
        "batching": mode,
        "model": model,
        "max_batch_size": size,
        "measured": True,
        "tasks_per_s": rounded(tps, 1),
        "capacity_tasks_per_s": rounded(capacity.get(size), 1),
        "of_capacity": rounded(of_capacity, 3) if mode != "off" else None,
        "p50_ms": rounded(statistics.median(r.p50_ms for r in results), 1),
        "p95_ms": rounded(statistics.median(r.p95_ms for r in results), 1),
        "p99_ms": rounded(statistics.median(r.p99_ms for r in results), 1),
        "requests": sum(r.requests for r in results),
        "errors": sum(r.errors for r in results),
        "rounds": [r.to_dict() for r in results],
    }
