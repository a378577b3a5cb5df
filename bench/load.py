"""Load generation against 127.0.0.1: wrk when installed, else a small Python client.

Both are closed loops: `connections` keep-alive connections, each sending its next request as
soon as the previous answer arrives, for `duration` seconds. Both report requests/s and the
latency percentiles p50, p95 and p99.
"""

from __future__ import annotations

import http.client
import json
import math
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import HOST, pinned

_WRK_SCRIPT = """\
-- written by bench/load.py for one wrk run
wrk.method = "{method}"
wrk.headers["Content-Type"] = "application/json"
{body}
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,'
    .. '"status":%d,"timeout":%d,"p50":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class LoadResult:
    """What one load run measured. Latencies in milliseconds."""

    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int

    def to_dict(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


class LoadGenerator:
    """Runs closed-loop load; `name` is "wrk" or "python"."""

    def __init__(self, prefer: str = "auto", cpus: tuple[int, ...] | None = None) -> None:
        wrk = shutil.which("wrk")
        if prefer == "wrk" and wrk is None:
            raise RuntimeError("--load-generator wrk: wrk is not installed (apt-get install wrk)")
        self.name = "wrk" if wrk is not None and prefer != "python" else "python"
        self.cpus = cpus

    def version(self) -> str:
        if self.name == "python":
            return "bench/load.py threads + http.client"
        probe = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
        first = (probe.stdout or probe.stderr).splitlines()
        return first[0].split(" Copyright")[0] if first else "wrk"

    def run(self, url: str, body: bytes | None, connections: int, duration: float) -> LoadResult:
        """Load `url` (POST `body` as JSON, or GET when None) for `duration` seconds."""
        if urlsplit(url).hostname != HOST:
            raise ValueError(f"load is only ever sent to {HOST}, not {url}")
        if self.name == "wrk":
            return _run_wrk(url, body, connections, duration, self.cpus)
        return _run_python(url, body, connections, duration)


def _run_wrk(
    url: str, body: bytes | None, connections: int, duration: float, cpus: tuple[int, ...] | None
) -> LoadResult:
    with tempfile.TemporaryDirectory(prefix="relaxml-bench-wrk-") as tmp:
        script = Path(tmp) / "load.lua"
        body_line = ""
        if body is not None:
            body_path = Path(tmp) / "body.json"
            body_path.write_bytes(body)
            body_line = (
                f'local f = assert(io.open("{body_path}", "rb"))\n'
                'wrk.body = f:read("*a")\nf:close()'
            )
        method = "GET" if body is None else "POST"
        script.write_text(_WRK_SCRIPT.format(method=method, body=body_line))
        seconds = max(1, round(duration))
        argv = pinned(
            [
                "wrk",
                "--threads",
                "1",
                "--connections",
                str(connections),
                "--duration",
                f"{seconds}s",
                "--timeout",
                "30s",
                "--script",
                str(script),
                url,
            ],
            cpus,
        )
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line.removeprefix("BENCH_JSON "))
            break
    else:
        raise RuntimeError(f"wrk printed no result (exit {done.returncode}): {done.stderr}")
    duration_s = data["duration_us"] / 1e6
    errors = sum(data[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=data["requests"],
        duration_s=duration_s,
        requests_per_s=data["requests"] / duration_s if duration_s else 0.0,
        p50_ms=data["p50"] / 1000,
        p95_ms=data["p95"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        mean_ms=data["mean"] / 1000,
        errors=errors,
    )


def _run_python(url: str, body: bytes | None, connections: int, duration: float) -> LoadResult:
    parts = urlsplit(url)
    port = parts.port or 80
    path = parts.path or "/"
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    start = time.perf_counter()
    deadline = start + duration

    def loop(index: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=30)
        headers = {"Content-Type": "application/json"}
        try:
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    conn.request("GET" if body is None else "POST", path, body, headers)
                    response = conn.getresponse()
                    response.read()
                    ok = 200 <= response.status < 300
                except OSError:
                    ok = False
                    conn.close()
                latencies[index].append(time.perf_counter() - sent)
                if not ok:
                    errors[index] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 60)
    elapsed = time.perf_counter() - start
    samples = sorted(s for per in latencies for s in per)
    return LoadResult(
        requests=len(samples),
        duration_s=elapsed,
        requests_per_s=len(samples) / elapsed if elapsed else 0.0,
        p50_ms=percentile(samples, 50) * 1000,
        p95_ms=percentile(samples, 95) * 1000,
        p99_ms=percentile(samples, 99) * 1000,
        max_ms=(samples[-1] if samples else 0.0) * 1000,
        mean_ms=(sum(samples) / len(samples) if samples else 0.0) * 1000,
        errors=sum(errors),
    )


def percentile(sorted_samples: list[float], pct: float) -> float:
    """The nearest-rank percentile of already sorted samples (0.0 when there are none)."""
    if not sorted_samples:
        return 0.0
    rank = max(1, math.ceil(pct / 100 * len(sorted_samples)))
    return sorted_samples[min(rank, len(sorted_samples)) - 1]


def post_json(port: int, path: str, body: bytes, timeout: float = 120.0) -> tuple[int, Any]:
    """One POST to 127.0.0.1:`port`; the status and the decoded JSON answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("POST", path, body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
    finally:
        conn.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, raw.decode(errors="replace")
