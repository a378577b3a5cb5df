"""Soak: many concurrent clients for a while against a real `relaxml serve`; nothing may leak.

    python bench/soak.py                 # 200 clients for 60 s; writes results/soak.json and .md
    python bench/soak.py --short         # 20 clients for 5 s (what CI runs); writes nothing
    python bench/soak.py --clients 50 --seconds 20 --out DIR

relaxml serves `bench/models.py:Trainable` on 127.0.0.1 with auto delivery, its Label Studio
being a fake on loopback (`relaxml.testing.FakeLabelStudio`) that stores the background
predictions. Each client is a thread with its own keep-alive connection that sends, in a closed
loop, a mix of `GET /health`, `POST /setup`, `POST /predict` inline (1-3 tasks) and in the
background (12 tasks, more than RELAXML_AUTO_INLINE_MAX), and event webhooks (annotation created
and updated, which start training runs, and project updated).

The run has two phases: a warm-up (a sixth of the time, at least 2 s) and the measured rest.
After each phase the clients close their connections and the server is left to finish its
background work (every queued prediction delivered, no training run pending or running) and
to stop its idle worker threads (about 11 s); then its resident memory (summed over its
process tree), open file descriptors and threads are read. The two readings must match:
memory within 10%, descriptors no more than after the warm-up, threads at most 2 more (the
worker threads the server's periodic loops may hold at that moment; a leak shows as many).
Memory is also sampled under load, to show the shape of any growth.
Every answer must be the designed one: 200, or 503 `overloaded` (counted apart); anything
else, a connection error or a timeout is an error, and there must be none. At the end every
background task must have reached the fake Label Studio exactly once.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import payloads
import report
from common import (
    BENCH_DIR,
    HOST,
    REPO_DIR,
    Pinning,
    memory_of,
    process_tree,
    rounded,
    running,
)
from suite import relaxml_spec

if str(REPO_DIR) not in sys.path:
    sys.path.append(str(REPO_DIR))  # the test harness in tests/support/, imported as a package

from relaxml.testing import FakeLabelStudio

NAME = "soak"
TOKEN = "soak-label-studio-token-0001"
PROJECTS = 10  # distinct projects the clients spread over
BACKGROUND_TASKS = 12  # more than RELAXML_AUTO_INLINE_MAX (10): the background path
RSS_TOLERANCE = 0.10
RSS_EVERY_S = 5.0
IDLE_WORKER_S = 10.5  # anyio stops worker threads idle for more than 10 s
# Worker threads that the server's own periodic loops (the version watch every second,
# delivery, training) may hold when the threads are counted: one or two, by timing.
THREAD_SLACK = 2
MIX = (  # (kind, weight)
    ("health", 30),
    ("setup", 15),
    ("predict_inline", 30),
    ("predict_background", 1),
    ("webhook", 20),
)
FULL = {"clients": 200, "seconds": 60.0}
SHORT = {"clients": 20, "seconds": 5.0}


@dataclass
class Tally:
    """What the clients saw, merged under a lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    requests: Counter[str] = field(default_factory=Counter)
    overloaded: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=dict)
    background_tasks: set[int] = field(default_factory=set)

    def error(self, kind: str, what: str) -> None:
        with self.lock:
            self.errors[kind] += 1
            if len(self.examples) < 20:
                self.examples.append(f"{kind}: {what}"[:300])


class Client(threading.Thread):
    """One closed-loop client with its own keep-alive connection."""

    def __init__(self, number: int, port: int, stop: threading.Event, tally: Tally) -> None:
        super().__init__(name=f"soak-client-{number}", daemon=True)
        self.number = number
        self.port = port
        self.stop_event = stop
        self.tally = tally
        self.random = random.Random(number)
        self.conn: http.client.HTTPConnection | None = None
        self.latencies: dict[str, list[float]] = {kind: [] for kind, _ in MIX}
        self.requests: Counter[str] = Counter()

    def run(self) -> None:
        kinds = [kind for kind, _ in MIX]
        weights = [weight for _, weight in MIX]
        try:
            while not self.stop_event.is_set():
                kind = self.random.choices(kinds, weights)[0]
                self.one(kind)
        finally:
            if self.conn is not None:
                self.conn.close()
            with self.tally.lock:
                self.tally.requests.update(self.requests)
                for kind, values in self.latencies.items():
                    self.tally.latencies.setdefault(kind, []).extend(values)

    def one(self, kind: str) -> None:
        method, path, body = self.request(kind)
        started = time.perf_counter()
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection(HOST, self.port, timeout=60)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            self.conn.request(method, path, body=body, headers=headers)
            answer = self.conn.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.tally.error(kind, f"{type(exc).__name__}: {exc}")
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            return
        self.latencies[kind].append(time.perf_counter() - started)
        self.requests[kind] += 1
        if answer.status == 503 and _code(data) == "overloaded":
            with self.tally.lock:
                self.tally.overloaded[kind] += 1
            return
        if answer.status != 200:
            self.tally.error(kind, f"{answer.status} {data[:200]!r}")
            return
        if kind == "predict_background":
            self.check_queued(data, body)

    def check_queued(self, data: bytes, body: bytes | None) -> None:
        answer = json.loads(data)
        sent = json.loads(body or b"{}")["tasks"]
        if answer.get("queued") == len(sent):
            with self.tally.lock:
                self.tally.background_tasks.update(task["id"] for task in sent)
        elif len(answer.get("results", [])) != len(sent):  # answered inline: acceptable
            self.tally.error("predict_background", f"unexpected answer {data[:200]!r}")

    def request(self, kind: str) -> tuple[str, str, bytes | None]:
        project = self.random.randrange(1, PROJECTS + 1)
        uid = f"{project}.1795846025"
        if kind == "health":
            return "GET", "/health", None
        if kind == "setup":
            body = {
                "project": uid,
                "schema": payloads.LABEL_CONFIG,
                "hostname": "http://127.0.0.1:9",
                "access_token": f"project-{project}-token",
                "extra_params": None,
            }
            return "POST", "/setup", json.dumps(body).encode()
        if kind == "webhook":
            return "POST", "/webhook", json.dumps(self.event(project, uid)).encode()
        count = BACKGROUND_TASKS if kind == "predict_background" else self.random.randint(1, 3)
        first = _next_ids(count)
        tasks = []
        for task_id in range(first, first + count):
            task = payloads.task(task_id)
            task["project"] = project
            tasks.append(task)
        body = {
            "tasks": tasks,
            "project": uid,
            "label_config": payloads.LABEL_CONFIG,
            "params": {"login": None, "password": None, "context": None},
        }
        return "POST", "/predict", json.dumps(body).encode()

    def event(self, project: int, uid: str) -> dict[str, Any]:
        action = self.random.choice(["ANNOTATION_CREATED", "ANNOTATION_UPDATED", "PROJECT_UPDATED"])
        task_id = self.random.randrange(1, 1000)
        summary = {"id": project, "label_config": payloads.LABEL_CONFIG, "title": "soak"}
        if action == "PROJECT_UPDATED":
            return {"action": action, "project": summary}
        annotation = {
            "id": task_id,
            "result": [
                {
                    "id": "a1",
                    "from_name": "sentiment",
                    "to_name": "text",
                    "type": "choices",
                    "value": {"choices": ["positive"]},
                }
            ],
            "task": task_id,
            "project": project,
        }
        task = {"id": task_id, "data": payloads.task(task_id)["data"], "project": project}
        return {"action": action, "annotation": annotation, "task": task, "project": summary}


_ids_lock = threading.Lock()
_ids = [1]


def _next_ids(count: int) -> int:
    """The first of `count` task ids no other request used."""
    with _ids_lock:
        first = _ids[0]
        _ids[0] += count
        return first


def _code(data: bytes) -> str | None:
    try:
        answer = json.loads(data)
    except ValueError:
        return None
    return answer.get("error") if isinstance(answer, dict) else None


def load(
    port: int, clients: int, seconds: float, tally: Tally, pid: int, rss: list[float]
) -> float:
    """Run `clients` clients for `seconds`; the seconds it really took.

    The server's resident memory is appended to `rss` every RSS_EVERY_S seconds meanwhile.
    """
    stop = threading.Event()
    threads = [Client(n, port, stop, tally) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while not stop.wait(min(RSS_EVERY_S, max(0.0, started + seconds - time.perf_counter()))):
        if time.perf_counter() >= started + seconds:
            break
        rss.append(rounded(memory_of(pid).rss_mib, 1) or 0.0)
    stop.set()
    for thread in threads:
        thread.join(120)
    return time.perf_counter() - started


def _get(port: int, path: str) -> Any:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def settle(port: int, timeout: float) -> dict[str, Any]:
    """Wait until background work is done: every prediction delivered, no training running."""
    deadline = time.perf_counter() + timeout
    while True:
        jobs = _get(port, "/jobs")
        outbox = jobs.get("outbox") or {}
        busy = {k: v for k, v in outbox.items() if k not in ("done", "failed") and v}
        runs = [r for r in jobs.get("training") or [] if r.get("state") in ("queued", "running")]
        if not busy and not runs:
            _prune_idle_workers(port)
            return {"outbox": outbox, "settled": True}
        if time.perf_counter() > deadline:
            return {"outbox": outbox, "busy": busy, "training": len(runs), "settled": False}
        time.sleep(0.25)


def _prune_idle_workers(port: int) -> None:
    """Let the server's idle worker threads go, so that thread counts compare like for like.

    The server runs blocking work in a pool of worker threads (anyio's, at most 40) that
    grows with the peak concurrency and stops a worker only when it has been idle for
    IDLE_WORKER_S and another job is started. So: stay idle that long, then start one job (a
    `GET /jobs/{id}` runs in a worker thread); what is left is the server's own threads.
    """
    time.sleep(IDLE_WORKER_S)
    _get(port, "/jobs/run-0")
    time.sleep(0.5)


@dataclass(frozen=True)
class Reading:
    """The server's resources at a quiet moment, and the size of its data directory."""

    rss_mib: float
    fds: int
    threads: int
    data_dir_mib: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rss_mib": rounded(self.rss_mib, 1),
            "fds": self.fds,
            "threads": self.threads,
            "data_dir_mib": rounded(self.data_dir_mib, 1),
        }


def _size_mib(path: Path) -> float:
    total = 0
    for item in path.rglob("*"):
        with contextlib.suppress(OSError):
            total += item.stat().st_size if item.is_file() else 0
    return total / (1024 * 1024)


def read_resources(pid: int, data_dir: Path, samples: int = 5, interval: float = 0.4) -> Reading:
    """Resident memory, open descriptors and threads, summed over the server's process tree.

    Descriptors and threads are the least of a few readings: the server's own periodic work
    (the version watch every second, delivery) briefly takes a worker thread or a database
    handle, which is not growth.
    """
    fds, threads = [], []
    for sample in range(samples):
        if sample:
            time.sleep(interval)
        fd_count = thread_count = 0
        for member in process_tree(pid):
            try:
                fd_count += len(os.listdir(f"/proc/{member}/fd"))
                thread_count += len(os.listdir(f"/proc/{member}/task"))
            except OSError:
                continue
        fds.append(fd_count)
        threads.append(thread_count)
    return Reading(memory_of(pid).rss_mib, min(fds), min(threads), _size_mib(data_dir))


def _percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": rounded(at(0.5)), "p99_ms": rounded(at(0.99)), "max_ms": rounded(at(1.0))}


def soak(
    clients: int, seconds: float, workdir: Path, cpus: tuple[int, ...] | None
) -> dict[str, Any]:
    """One soak run; the results, with `problems` listing every property that failed."""
    warmup = max(2.0, seconds / 6)
    fake = FakeLabelStudio(api_key=TOKEN, accept_unknown_tasks=True)
    env = {
        "LABEL_STUDIO_URL": fake.url,
        "LABEL_STUDIO_API_KEY": TOKEN,
        "RELAXML_DELIVERY": "auto",
    }
    data_dir = workdir / "relaxml-data"
    spec = relaxml_spec("Trainable", data_dir, env)
    spec.name = "relaxml-soak"
    warm_tally, tally = Tally(), Tally()
    try:
        with running(spec, workdir / "logs", cpus) as server:
            rss: list[float] = []
            warm_s = load(server.port, clients, warmup, warm_tally, server.pid, [])
            warm_settle = settle(server.port, 120)
            after_warmup = read_resources(server.pid, data_dir)
            load_s = load(server.port, clients, seconds - warmup, tally, server.pid, rss)
            end_settle = settle(server.port, 120)
            at_end = read_resources(server.pid, data_dir)
            health = _get(server.port, "/health")
            alive = server.process.poll() is None
    finally:
        fake.close()
    delivered = fake.predictions_by_task()
    expected = warm_tally.background_tasks | tally.background_tasks
    not_delivered = len(expected - set(delivered))
    twice = sum(1 for task, n in delivered.items() if task in expected and n > 1)
    total = sum(tally.requests.values())
    results: dict[str, Any] = {
        "settings": {
            "clients": clients,
            "seconds": seconds,
            "warmup_s": rounded(warmup, 1),
            "mix": dict(MIX),
            "projects": PROJECTS,
            "background_tasks_per_request": BACKGROUND_TASKS,
            "model": "Trainable",
        },
        "warmup": {
            "seconds": rounded(warm_s, 1),
            "requests": sum(warm_tally.requests.values()),
            "errors": sum(warm_tally.errors.values()),
            "settled": warm_settle["settled"],
        },
        "load_s": rounded(load_s, 1),
        "requests": total,
        "requests_per_s": rounded(total / load_s, 1) if load_s else None,
        "by_kind": {
            kind: {
                "requests": tally.requests[kind],
                "overloaded": tally.overloaded[kind],
                "errors": tally.errors[kind],
                **_percentiles(tally.latencies.get(kind, [])),
            }
            for kind, _ in MIX
        },
        "errors": sum(tally.errors.values()) + sum(warm_tally.errors.values()),
        "overloaded_503": sum(tally.overloaded.values()) + sum(warm_tally.overloaded.values()),
        "error_examples": warm_tally.examples + tally.examples,
        "after_warmup": after_warmup.to_dict(),
        "at_end": at_end.to_dict(),
        "rss_growth": rounded(at_end.rss_mib / after_warmup.rss_mib - 1, 3),
        "rss_during_load_mib": rss,
        "fd_growth": at_end.fds - after_warmup.fds,
        "thread_growth": at_end.threads - after_warmup.threads,
        "settled_at_end": end_settle,
        "background": {
            "tasks_queued": len(expected),
            "not_delivered": not_delivered,
            "delivered_twice": twice,
        },
        "health_at_end": health.get("status") if isinstance(health, dict) else None,
        "alive_at_end": alive,
    }
    results["problems"] = problems(results)
    return results


def problems(results: dict[str, Any]) -> list[str]:
    """Every soak property that does not hold."""
    found = []
    if results["errors"]:
        found.append(f"{results['errors']} requests failed: {results['error_examples'][:3]}")
    if results["rss_growth"] is None or results["rss_growth"] > RSS_TOLERANCE:
        found.append(
            f"resident memory grew by {results['rss_growth']:.0%} after the warm-up "
            f"({results['after_warmup']['rss_mib']} → {results['at_end']['rss_mib']} MiB)"
        )
    if results["fd_growth"] > 0:
        found.append(f"{results['fd_growth']} more open file descriptors than after the warm-up")
    if results["thread_growth"] > THREAD_SLACK:
        found.append(f"{results['thread_growth']} more threads than after the warm-up")
    if not results["settled_at_end"]["settled"] or not results["warmup"]["settled"]:
        found.append(f"background work did not finish: {results['settled_at_end']}")
    background = results["background"]
    if background["not_delivered"] or background["delivered_twice"]:
        found.append(f"background delivery was not exactly once: {background}")
    if not results["alive_at_end"] or results["health_at_end"] != "UP":
        found.append(f"the server is not UP at the end: {results['health_at_end']}")
    if not results["requests"]:
        found.append("no requests were measured")
    return found


def markdown(document: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    machine = document["machine"]
    r = document["results"]
    s = r["settings"]
    lines = [
        "# Soak: relaxml under many concurrent clients",
        "",
        f"{document['date']}, {machine['cpu']}, {machine['cores_usable']} usable cores, "
        f"{machine['ram_gib']} GiB RAM, {machine['os']}, Python {machine['python']}; relaxml "
        f"at commit {str(document['relaxml']['commit'])[:7]}"
        + (" (relaxml/ modified)" if document["relaxml"]["relaxml_dir_modified"] else "")
        + f". {s['clients']} clients for {s['seconds']:.0f} s (the first {s['warmup_s']} s "
        "warm-up), model `bench/models.py:Trainable`, auto delivery to a fake Label Studio "
        "on loopback.",
        "",
        "| measure | after warm-up | at the end | growth |",
        "|---|---:|---:|---:|",
        f"| resident memory (MiB) | {r['after_warmup']['rss_mib']} | {r['at_end']['rss_mib']} "
        f"| {r['rss_growth']:+.1%} |",
        f"| open file descriptors | {r['after_warmup']['fds']} | {r['at_end']['fds']} "
        f"| {r['fd_growth']:+d} |",
        f"| threads | {r['after_warmup']['threads']} | {r['at_end']['threads']} "
        f"| {r['thread_growth']:+d} |",
        f"| data directory on disk (MiB; not a soak property) | "
        f"{r['after_warmup']['data_dir_mib']} | {r['at_end']['data_dir_mib']} | |",
        "",
        f"Resident memory under load, every {RSS_EVERY_S:.0f} s after the warm-up (MiB): "
        + (", ".join(str(v) for v in r["rss_during_load_mib"]) or "-")
        + ".",
        "",
        f"{r['requests']:,} requests in {r['load_s']} s after the warm-up "
        f"({r['requests_per_s']:,} requests/s); errors: {r['errors']}; designed 503s: "
        f"{r['overloaded_503']}; background tasks queued {r['background']['tasks_queued']:,}, "
        f"not delivered {r['background']['not_delivered']}, delivered twice "
        f"{r['background']['delivered_twice']}; /health at the end: {r['health_at_end']}.",
        "",
        "| request | count | 503 | errors | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind, row in r["by_kind"].items():
        lines.append(
            f"| {kind} | {row['requests']:,} | {row['overloaded']} | {row['errors']} | "
            f"{row['p50_ms']} | {row['p99_ms']} | {row['max_ms']} |"
        )
    lines += ["", "Problems: " + ("; ".join(r["problems"]) if r["problems"] else "none") + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="relaxml's soak test (loopback only).")
    parser.add_argument("--short", action="store_true", help="20 clients for 5 s (CI)")
    parser.add_argument("--clients", type=int, help="concurrent clients (default 200)")
    parser.add_argument("--seconds", type=float, help="total seconds of load (default 60)")
    parser.add_argument(
        "--out",
        type=Path,
        help="directory for soak.json and soak.md (default: bench/results, full runs only)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the server's log")
    args = parser.parse_args(argv)
    scale = SHORT if args.short else FULL
    clients = args.clients or int(scale["clients"])
    seconds = args.seconds or float(scale["seconds"])
    if clients < 1 or seconds < 2:
        parser.error("--clients must be at least 1 and --seconds at least 2")
    out = args.out or (None if args.short else BENCH_DIR / "results")
    machine = report.machine()
    pinning = Pinning.detect()
    workdir = Path(tempfile.mkdtemp(prefix="relaxml-soak-"))
    print(f"soak: {clients} clients for {seconds:.0f} s, logs in {workdir}", flush=True)
    results = soak(clients, seconds, workdir, pinning.server)
    document = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "mode": "short" if args.short else "full",
        "machine": machine,
        "relaxml": report.relaxml_source(),
        "pinning": pinning.describe(),
        "load_average_end": report.load_average(),
        "results": results,
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "soak.json").write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        (out / "soak.md").write_text(markdown(document))
    sys.stdout.write(markdown(document))
    if results["problems"]:
        print(f"server log kept in {workdir}", flush=True)
        return 1
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
