"""The results: the machine, the targets with their ratios, and the files (JSON + Markdown)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from common import REPO_DIR
from suite import FLOOR, INCUMBENT, RELAXML

NO_VALUE = "-"
PACKAGES = ("relaxml", "starlette", "uvicorn", "anyio", "h11", "click")
LABELS = {
    RELAXML: "relaxml",
    FLOOR: "bare Starlette (floor)",
    INCUMBENT: "label-studio-ml-backend",
}


def machine() -> dict[str, Any]:
    """What the suite ran on, read from /proc and the interpreter."""
    cpu = "unknown"
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def relaxml_source() -> dict[str, Any]:
    """The commit of the relaxml tree measured, and whether relaxml/ had local changes."""
    git = ["git", "-C", str(REPO_DIR)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    status = subprocess.run(
        [*git, "status", "--porcelain", "--", "relaxml"],
        capture_output=True,
        text=True,
        check=False,
    )
    return {
        "commit": head.stdout.strip() or None,
        "relaxml_dir_modified": bool(status.stdout.strip()) if status.returncode == 0 else None,
    }


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other work on the machine skews timings)."""
    return [float(x) for x in _read("/proc/loadavg").split()[:3]] or [0.0, 0.0, 0.0]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def targets(benchmarks: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue, with the measured value and whether it was met (None: not
    measured)."""
    out: list[dict[str, Any]] = []
    overhead = benchmarks.get("overhead") or {}
    ratios = overhead.get("ratios") or {}
    for n in (1, 100):
        out.append(
            _target(
                f"overhead-floor-{n}",
                f"relaxml ÷ bare Starlette, requests/s, {n} task(s) per request",
                (ratios.get(f"vs_floor_{n}") or {}).get("median"),
                ">=",
                0.8,
                "x",
            )
        )
    for n in (1, 100):
        value = (ratios.get(f"vs_incumbent_{n}") or {}).get("median")
        out.append(
            _target(
                f"overhead-incumbent-{n}",
                f"relaxml ÷ label-studio-ml-backend, requests/s, {n} task(s) per request",
                value,
                ">=",
                20.0,
                "x",
                note=None if value is not None else overhead.get("incumbent"),
            )
        )
    rows = (benchmarks.get("responsiveness") or {}).get("rows") or []
    for row in rows:
        if row.get("server") == RELAXML and row.get("measured"):
            out.append(
                _target(
                    f"health-p99-{row['model']}",
                    f"relaxml /health p99 during a bulk request, model that {row['flavour']}",
                    row["during"]["p99_ms"],
                    "<",
                    50.0,
                    " ms",
                )
            )
    return out


def _target(
    key: str,
    what: str,
    value: float | None,
    op: str,
    threshold: float,
    unit: str,
    note: str | None = None,
) -> dict[str, Any]:
    met = None if value is None else (value >= threshold if op == ">=" else value < threshold)
    return {
        "key": key,
        "what": what,
        "value": value,
        "op": op,
        "threshold": threshold,
        "unit": unit.strip(),
        "met": met,
        "note": note,
    }


def write(results: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write latest.json and latest.md to `out_dir`; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "latest.json", out_dir / "latest.md"
    json_path.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def markdown(results: dict[str, Any]) -> str:
    """The results as a readable Markdown page."""
    m = results["machine"]
    gen = results["load_generator"]
    lines = [
        "# relaxml benchmarks",
        "",
        f"- **Date:** {results['date']} ({results['mode']} run, {results['seconds']:.0f} s)",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['os']}, "
        f"Python {m['python']}",
        "- **Packages:** " + ", ".join(f"{k} {v}" for k, v in m["packages"].items()),
        f"- **relaxml commit:** {_commit(results['relaxml'])}",
        f"- **Incumbent:** {results['incumbent']}",
        f"- **Load generator:** {gen['version']}; {gen['pinning']}",
        f"- **Load average** at start / end: {_loads(results['load_average'])}",
        "",
    ]
    if results["mode"] == "quick":
        lines += ["> Quick mode: a smoke run at tiny scale. The timings mean nothing.", ""]
    lines += _targets_md(results["targets"])
    bench = results["benchmarks"]
    for name, render in (
        ("overhead", _overhead_md),
        ("responsiveness", _responsiveness_md),
        ("memory", _memory_md),
        ("startup", _startup_md),
    ):
        if name in bench:
            lines += render(bench[name]) if "error" not in bench[name] else _error_md(name, bench)
    return "\n".join(lines).rstrip() + "\n"


def _commit(source: dict[str, Any]) -> str:
    commit = (source.get("commit") or "unknown")[:12]
    return commit + (" (relaxml/ modified)" if source.get("relaxml_dir_modified") else "")


def _loads(pair: dict[str, list[float]]) -> str:
    return " / ".join(f"{v[0]:.2f}" for v in (pair.get("start"), pair.get("end")) if v)


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return NO_VALUE
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _targets_md(items: list[dict[str, Any]]) -> list[str]:
    lines = ["## Targets", "", "| target | measured | wanted | result |", "|---|---:|---:|---|"]
    for t in items:
        unit = t["unit"]
        value = NO_VALUE if t["value"] is None else f"{_fmt(t['value'], 2)}{unit if unit else ''}"
        wanted = f"{'≥' if t['op'] == '>=' else '<'} {_fmt(t['threshold'], 1)}{unit}"
        result = {True: "met", False: "**missed**", None: t.get("note") or "not measured"}
        lines.append(f"| {t['what']} | {value} | {wanted} | {result[t['met']]} |")
    return [*lines, ""]


def _overhead_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    lines = [
        "## 1. Framework overhead",
        "",
        f"The same trivial model; {s['connections']} keep-alive connections, closed loop; "
        f"median of {s['rounds']} round(s) of {s['seconds_per_round']} s per server and batch "
        "size, servers taking turns.",
        "",
        "| server | tasks/request | requests/s | tasks/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        label = LABELS.get(row["server"], row["server"])
        if not row.get("measured"):
            note = data.get("incumbent") or "not measured"
            lines.append(f"| {label} | {row['tasks_per_request']} | {note} | | | | | |")
            continue
        lines.append(
            f"| {label} | {row['tasks_per_request']} | {_fmt(row['requests_per_s'], 0)} | "
            f"{_fmt(row['tasks_per_s'], 0)} | {_fmt(row['p50_ms'], 2)} | "
            f"{_fmt(row['p95_ms'], 2)} | {_fmt(row['p99_ms'], 2)} | {row['errors']} |"
        )
    lines += ["", "| ratio (relaxml ÷ other, requests/s) | median | per round |", "|---|---:|---|"]
    for key, value in data["ratios"].items():
        other, _, n = key.removeprefix("vs_").rpartition("_")
        rounds = ", ".join(_fmt(r, 2) for r in value["per_round"])
        lines.append(f"| vs {other}, {n} task(s)/request | {_fmt(value['median'], 2)} | {rounds} |")
    return [*lines, ""]


def _responsiveness_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    lines = [
        "## 2. Responsiveness",
        "",
        f"/health on one connection, closed loop, while one bulk request of {s['bulk_tasks']} "
        f"tasks runs on a model that takes {int(s['seconds_per_task'] * 1000)} ms per task.",
        "",
        "| server | slow model | bulk request | /health requests | p50 ms | p95 ms | p99 ms | "
        "max ms | idle p99 ms |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        label = LABELS.get(row["server"], row["server"])
        if not row.get("measured"):
            lines.append(f"| {label} | {row['model']} | {row.get('note', '')} | | | | | | |")
            continue
        d, i = row["during"], row["idle"]
        bulk = f"{_fmt(row['bulk_seconds'], 2)} s" + ("" if row["bulk_ok"] else " (failed)")
        lines.append(
            f"| {label} | {row['flavour']} | {bulk} | {row['health_requests']} | "
            f"{_fmt(d['p50_ms'], 2)} | {_fmt(d['p95_ms'], 2)} | {_fmt(d['p99_ms'], 2)} | "
            f"{_fmt(d['max_ms'], 2)} | {_fmt(i['p99_ms'], 2)} |"
        )
    return [*lines, ""]


def _memory_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    lines = [
        "## 5. Memory",
        "",
        f"Summed over the process tree. Load: {s['load']}, then one bulk request of "
        f"{s['bulk_tasks']} tasks ({s['bulk_body_bytes'] / 1e6:.1f} MB). Peak is the sum of "
        "each process's VmHWM.",
        "",
        "| server | processes | idle RSS MiB | idle PSS MiB | peak RSS MiB | RSS after MiB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        label = LABELS.get(row["server"], row["server"])
        if not row.get("measured"):
            lines.append(f"| {label} | {row.get('note', '')} | | | | |")
            continue
        lines.append(
            f"| {label} | {row['processes']} | {_fmt(row['idle_rss_mib'])} | "
            f"{_fmt(row['idle_pss_mib'])} | {_fmt(row['peak_rss_mib'])} | "
            f"{_fmt(row['rss_after_mib'])} |"
        )
    return [*lines, ""]


def _startup_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    lines = [
        "## 6. Start-up",
        "",
        f"From starting the process to the first 200 from /health (polled every "
        f"{s['poll_interval_ms']} ms); {s['repeats']} runs after one warm-up start.",
        "",
        "| server | command | median s | min s | max s |",
        "|---|---|---:|---:|---:|",
    ]
    for row in data["rows"]:
        label = LABELS.get(row["server"], row["server"])
        if not row.get("measured"):
            lines.append(f"| {label} | {row.get('note', '')} | | | |")
            continue
        lines.append(
            f"| {label} | `{row['command']}` | {_fmt(row['median_s'], 2)} | "
            f"{_fmt(row['min_s'], 2)} | {_fmt(row['max_s'], 2)} |"
        )
    return [*lines, ""]


def _error_md(name: str, bench: dict[str, Any]) -> list[str]:
    return [f"## {name}", "", f"Failed: {bench[name]['error']}", ""]
