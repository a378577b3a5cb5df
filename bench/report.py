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
from suite import FLOOR, INCUMBENT, INCUMBENT_TEMPLATE, LIMIT, RELAXML, RELAXML_ASYNC

NO_VALUE = "-"
PACKAGES = ("relaxml", "starlette", "uvicorn", "anyio", "h11", "httptools", "uvloop", "click")
"""Versions the report names; uvicorn uses httptools and uvloop instead of h11 and asyncio
when they are installed (the `ray` extra brings them), which changes every server's figures."""
LABELS = {
    RELAXML: "relaxml",
    RELAXML_ASYNC: "relaxml, `async def predict`",
    LIMIT: "bare Starlette, predict on the loop (the limit)",
    FLOOR: "bare Starlette, thread + access log (floor)",
    INCUMBENT: "label-studio-ml-backend",
    INCUMBENT_TEMPLATE: "label-studio-ml-backend, its default template",
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
    for key, what, wanted in (
        ("vs_limit_1", "relaxml ÷ the limit, requests/s, 1 task per request", 0.5),
        ("vs_limit_100", "relaxml ÷ the limit, requests/s, 100 tasks per request", 0.8),
        ("async_vs_limit_1", "relaxml (`async def predict`) ÷ the limit, 1 task per request", 0.8),
    ):
        value = (ratios.get(key) or {}).get("median")
        out.append(_target(f"overhead-{key.replace('_', '-')}", what, value, ">=", wanted, "x"))
    for n in (1, 100):
        out.append(
            _target(
                f"overhead-floor-{n}",
                f"relaxml ÷ bare Starlette floor (thread + access log), {n} task(s) per request",
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
    for n in (1, 100):
        value = (ratios.get(f"vs_template_{n}") or {}).get("median")
        out.append(
            _target(
                f"overhead-template-{n}",
                "relaxml ÷ label-studio-ml-backend's default template (`label-studio-ml "
                f"create`: setup() stores the model version), requests/s, {n} task(s) per request",
                value,
                ">=",
                5.0,
                "x",
                note=None if value is not None else overhead.get("incumbent"),
            )
        )
    loaded = (ratios.get("loaded_vs_incumbent_1") or {}).get("median")
    constructor = (overhead.get("settings") or {}).get("loaded_constructor_ms")
    out.append(
        _target(
            "overhead-loaded-incumbent-1",
            "relaxml ÷ label-studio-ml-backend, requests/s, 1 task per request, model that loads "
            f"weights ({_fmt(constructor, 0)} ms constructor)",
            loaded,
            ">=",
            20.0,
            "x",
            note=None if loaded is not None else overhead.get("incumbent_loaded"),
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
    batching = benchmarks.get("batching") or {}
    out.append(
        _target(
            "batching-on-vs-off",
            "micro-batching on ÷ off, tasks/s, 64 single-task clients, 20 ms per call + "
            "0.2 ms per task",
            (batching.get("ratio") or {}).get("median"),
            ">=",
            5.0,
            "x",
        )
    )
    on = next((r for r in batching.get("rows") or [] if r.get("batching") == "on"), {})
    out.append(
        _target(
            "batching-capacity",
            f"micro-batching on ÷ the model's capacity (full batches of {on.get('max_batch_size')} "
            "back to back), tasks/s, 64 single-task clients",
            on.get("of_capacity"),
            ">=",
            0.9,
            "x",
        )
    )
    delivery = benchmarks.get("delivery") or {}
    background = next((r for r in delivery.get("rows") or [] if r.get("path") == "background"), {})
    tasks = (delivery.get("settings") or {}).get("tasks")
    of_tasks = f" of {tasks:,} tasks" if tasks else ""
    out.append(
        _target(
            "delivery-predict",
            f"relaxml's answer to a background Retrieve Predictions{of_tasks} from Label Studio",
            background.get("predict_s") if background.get("measured") else None,
            "<",
            1.0,
            " s",
            note=background.get("note") or delivery.get("error"),
        )
    )
    vs_limit = delivery.get("vs_limit") or {}
    for key, what in (
        ("background_from_receipt", "from relaxml's receipt of a background Retrieve Predictions"),
        ("direct", "from the POST of the same /predict body to relaxml"),
    ):
        out.append(
            _target(
                f"delivery-vs-limit-{key.replace('_', '-')}",
                f"relaxml's time until the last prediction{of_tasks} is stored in Label Studio, "
                f"{what}, ÷ Label Studio's own import of them in the same batch sizes",
                vs_limit.get(key),
                "<=",
                delivery.get("limit_target") or 1.2,
                "x",
                note=background.get("note") or delivery.get("error"),
            )
        )
    interactive = benchmarks.get("interactive") or {}
    row = next(iter(interactive.get("rows") or []), {})
    during = row.get("during") or {}
    tasks = (interactive.get("settings") or {}).get("background_tasks")
    of = f" of {tasks:,} tasks" if tasks else ""
    for loop, what, wanted in (
        ("interactive", f"interactive request p99 during a background job{of}", 50.0),
        ("health", f"/health p99 during a background job{of}", 10.0),
    ):
        value = (during.get(loop) or {}).get("p99_ms") if row.get("measured") else None
        out.append(_target(f"interactive-{loop}-p99", what, value, "<", wanted, " ms"))
    return out


COMPARE = {
    ">=": lambda value, threshold: value >= threshold,
    "<=": lambda value, threshold: value <= threshold,
    "<": lambda value, threshold: value < threshold,
}
SYMBOLS = {">=": "≥", "<=": "≤", "<": "<"}


def _target(
    key: str,
    what: str,
    value: float | None,
    op: str,
    threshold: float,
    unit: str,
    note: str | None = None,
) -> dict[str, Any]:
    met = None if value is None else COMPARE[op](value, threshold)
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
        ("batching", _batching_md),
        ("delivery", _delivery_md),
        ("memory", _memory_md),
        ("startup", _startup_md),
        ("interactive", _interactive_md),
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
        wanted = f"{SYMBOLS[t['op']]} {_fmt(t['threshold'], 1)}{unit}"
        result = {True: "met", False: "**missed**", None: t.get("note") or "not measured"}
        lines.append(f"| {t['what']} | {value} | {wanted} | {result[t['met']]} |")
    return [*lines, ""]


def _overhead_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    constructor = s.get("loaded_constructor_ms")
    models = {
        "Trivial": "trivial",
        "Loaded": f"loads weights ({_fmt(constructor, 0)} ms)",
    }
    lines = [
        "## 1. Framework overhead",
        "",
        f"The same model behind each server; {s['connections']} keep-alive connections, closed "
        f"loop; median of {s['rounds']} round(s) of {s['seconds_per_round']} s per server and "
        "batch size, servers taking turns. The trivial model costs nothing to construct; the "
        f"one that loads weights builds a lookup table of {s.get('loaded_table_entries', 0):,} "
        f"entries in its constructor ({_fmt(constructor, 1)} ms of pure Python here), which "
        "relaxml and the floor run once at start-up and the incumbent's framework on every "
        "request. The incumbent's default template is the model `label-studio-ml create` "
        "writes: its `setup()` stores the model version in the framework's cache, on every "
        "request; relaxml and the others serve the trivial model. The limit (`bench/limit.py`) "
        "is a bare Starlette app on the same uvicorn that "
        "parses the body, runs the same predict on the event loop and answers, with no access "
        "log: no server on this stack answers faster. The floor (`bench/floor.py`) is the least "
        "correct backend: predict in a worker thread, one call at a time, an access line per "
        "request.",
        "",
        "| server | model | tasks/request | requests/s | tasks/s | p50 ms | p95 ms | p99 ms | "
        "errors |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        label = LABELS.get(row["server"], row["server"])
        model = models.get(row.get("model", "Trivial"), row.get("model"))
        if not row.get("measured"):
            note = data.get("incumbent") or "not measured"
            lines.append(f"| {label} | {model} | {row['tasks_per_request']} | {note} | | | | | |")
            continue
        lines.append(
            f"| {label} | {model} | {row['tasks_per_request']} | "
            f"{_fmt(row['requests_per_s'], 0)} | {_fmt(row['tasks_per_s'], 0)} | "
            f"{_fmt(row['p50_ms'], 2)} | {_fmt(row['p95_ms'], 2)} | {_fmt(row['p99_ms'], 2)} | "
            f"{row['errors']} |"
        )
    lines += [
        "",
        "| ratio (relaxml ÷ other, requests/s) | model | median | per round |",
        "|---|---|---:|---|",
    ]
    for key, value in data["ratios"].items():
        model = models["Loaded"] if key.startswith("loaded_") else models["Trivial"]
        ours, _, rest = key.removeprefix("loaded_").partition("vs_")
        other, _, n = rest.rpartition("_")
        who = "relaxml (async def predict)" if ours == "async_" else "relaxml"
        rounds = ", ".join(_fmt(r, 2) for r in value["per_round"])
        lines.append(
            f"| {who} vs {other}, {n} task(s)/request | {model} | {_fmt(value['median'], 2)} "
            f"| {rounds} |"
        )
    return [*lines, ""]


def _batching_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    ratio = data["ratio"]
    lines = [
        "## 3. Micro-batching",
        "",
        f"A model that costs {_fmt(s['call_ms'], 0)} ms per `predict` call plus "
        f"{_fmt(s['task_ms'], 1)} ms per task (waiting, GIL released), served by relaxml with "
        f"its defaults (off) and with `batch_timeout = {s['batch_timeout_s']}` and calls of at "
        f"most `max_batch_size` tasks (on). {s['connections']} keep-alive connections each send "
        f"one-task requests, closed loop; median of {s['rounds']} round(s) of "
        f"{s['seconds_per_round']} s. The capacity is the model's tasks/s when fed full "
        "batches back to back (measured without a server). With closed-loop clients a full "
        "batch can wait for the model only if there are at least twice as many clients as "
        "the batch size; the row with batches as large as the number of clients shows the "
        "round trip the model must idle for otherwise.",
        "",
        "| batching | max_batch_size | tasks/s | capacity | ÷ capacity | p50 ms | p95 ms | "
        "p99 ms | requests | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        lines.append(
            f"| {row['batching']} | {row.get('max_batch_size', '-')} | "
            f"{_fmt(row['tasks_per_s'], 0)} | {_fmt(row.get('capacity_tasks_per_s'), 0)} | "
            f"{_fmt(row.get('of_capacity'), 2)} | {_fmt(row['p50_ms'], 1)} | "
            f"{_fmt(row['p95_ms'], 1)} | {_fmt(row['p99_ms'], 1)} | {row['requests']} | "
            f"{row['errors']} |"
        )
    rounds = ", ".join(_fmt(r, 2) for r in ratio["per_round"])
    lines += ["", f"On ÷ off, tasks/s: **{_fmt(ratio['median'], 1)}x** (per round: {rounds}).", ""]
    return lines


def _delivery_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    lines = [
        "## 4. Delivery to Label Studio",
        "",
        f"A real Label Studio {s['label_studio']} on 127.0.0.1 (started in "
        f"{_fmt(s.get('label_studio_start_s'), 1)} s), one project of {_fmt(s['tasks'], 0)} text "
        "tasks per row, relaxml serving the trivial model. Times in seconds.",
        "",
    ]
    rows = {row["path"]: row for row in data["rows"]}
    if not any(row.get("measured") for row in rows.values()):
        note = next(iter(rows.values()), {}).get("note") or "not measured"
        return [*lines, f"Not measured: {note}", ""]
    bg, direct, inline = rows["background"], rows["direct"], rows["inline"]
    limit = rows.get("limit") or {}
    ratios = data.get("vs_limit") or {}
    lines += [
        "| how | Label Studio's side | relaxml's /predict | answered | last prediction "
        "stored | tasks/s | imports into Label Studio | stored |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
        f"| background, Retrieve Predictions on all tasks (Data Manager) | "
        f"{_fmt(bg['label_studio_s'], 1)} | {_fmt(bg['predict_s'], 3)} | "
        f"{_fmt(bg['action_s'], 1)} | {_fmt(bg['done_s'], 1)} | {_fmt(bg['tasks_per_s'], 0)} | "
        f"{_imports_md(bg)} | {bg['stored']} |",
        f"| background, the same body POSTed to relaxml directly | - | "
        f"{_fmt(direct['predict_s'], 3)} | {_fmt(direct['post_s'], 2)} | "
        f"{_fmt(direct['done_s'], 1)} | {_fmt(direct['tasks_per_s'], 0)} | "
        f"{_imports_md(direct)} | {direct['stored']} |",
        f"| limit: the same predictions POSTed to Label Studio's import API, no relaxml | - | - "
        f"| - | {_fmt(limit.get('limit_s'), 1)} | {_fmt(limit.get('tasks_per_s'), 0)} | "
        f"{limit.get('imports', NO_VALUE)} of at most {_fmt(limit.get('import_size'), 0)} | "
        f"{limit.get('stored', NO_VALUE)} |",
        f"| inline, Retrieve Predictions on {inline['chunks']} chunks of "
        f"{s['inline_chunk']} selected tasks | {_fmt(inline['label_studio_s'], 1)} | "
        f"{_fmt(inline['predict_s'], 3)} (sum) | {_fmt(inline['total_s'], 1)} | "
        f"{_fmt(inline['total_s'], 1)} | {_fmt(inline['tasks_per_s'], 0)} | - | "
        f"{inline['stored']} |",
        "",
        "Times from the click (or the POST). *Label Studio's side*: the action's time minus "
        "relaxml's `/predict` time (its access-log line). Background: Label Studio reads and "
        f"serializes the tasks before it calls relaxml (relaxml queued the job "
        f"{_fmt(bg['queued_after_s'], 1)} s after the click); the last prediction is stored "
        f"{_fmt(bg['done_after_action_s'], 1)} s after the action returned "
        f"({_fmt(direct['done_after_answer_s'], 1)} s after the direct POST's answer). "
        f"Inline: each chunk took {_fmt(inline['chunk_s_median'], 1)} s (median), almost all "
        "of it Label Studio storing the chunk's predictions. Every row ends with exactly one "
        "prediction per task in Label Studio's `GET /api/predictions/?project=`.",
        "",
        "The limit: the trivial model's predictions for the same tasks, shaped as relaxml sends "
        "them, POSTed straight to `POST /api/projects/{id}/import/predictions` in relaxml's "
        f"import size (`delivery_batch` = {_fmt(s.get('delivery_batch'), 0)}), bodies "
        "serialized beforehand, timed from the first POST until the last returns, on its own "
        "project (measured first, on the emptiest database). *Imports into Label Studio*: the "
        "bulk imports relaxml made (its debug log), how many and their sizes.",
        "",
        "relaxml's time until the last prediction is stored ÷ the limit (target "
        f"≤ {_fmt(data.get('limit_target'), 1)}x): background from relaxml's receipt of the "
        f"request ({_fmt(bg.get('done_after_receipt_s'), 1)} s) "
        f"**{_fmt(ratios.get('background_from_receipt'), 2)}x**; the same body POSTed "
        f"directly **{_fmt(ratios.get('direct'), 2)}x**; background from the click, Label "
        f"Studio's own side included, {_fmt(ratios.get('background_from_click'), 2)}x. "
        "Label Studio's imports alone (relaxml's debug log) took "
        f"{_fmt(bg.get('import_s_total'), 1)} s in the background row and "
        f"{_fmt(direct.get('import_s_total'), 1)} s in the direct one, against the limit's "
        f"{_fmt(limit.get('limit_s'), 1)} s; the rest of relaxml's time is its own (predicting "
        "the first full import's tasks, the turn between two imports, and the 0.1 s poll).",
        "",
        f"Inline in chunks ÷ background from Label Studio, time until every prediction is "
        f"stored: **{_fmt(data.get('ratio_inline_vs_background'), 2)}x**.",
        "",
    ]
    return lines


def _imports_md(row: dict[str, Any]) -> str:
    """How many bulk imports relaxml made, and their sizes."""
    count = row.get("imports")
    if not count:
        return NO_VALUE
    sizes = row.get("import_sizes")
    if sizes:
        return f"{count}: " + ", ".join(f"{n:,}" for n in sizes)
    return (
        f"{count}, sizes {row['import_size_min']:,} to {row['import_size_max']:,} "
        f"(median {row['import_size_median']:,})"
    )


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


def _interactive_md(data: dict[str, Any]) -> list[str]:
    s = data["settings"]
    lines = [
        "## 7. Interactive first",
        "",
        f"A model that takes {int(s['seconds_per_task'] * 1000)} ms per task predicts a "
        f"background job of {s['background_tasks']:,} tasks while one connection sends "
        "interactive requests (one task with `params.context`) and another asks /health, "
        f"closed loops for {s['seconds']} s; the same loops on the same server before the job "
        "give the idle values.",
        "",
        "| loop | requests | p50 ms | p95 ms | p99 ms | max ms | idle p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in data["rows"]:
        if not row.get("measured"):
            lines.append(f"| {row.get('note', 'not measured')} | | | | | | | |")
            continue
        for loop in ("interactive", "health"):
            d, i = row["during"][loop], row["idle"][loop]
            lines.append(
                f"| {loop} | {d['requests']} | {_fmt(d['p50_ms'], 2)} | {_fmt(d['p95_ms'], 2)} | "
                f"{_fmt(d['p99_ms'], 2)} | {_fmt(d['max_ms'], 2)} | {_fmt(i['p99_ms'], 2)} | "
                f"{d['errors']} |"
            )
        lines += [
            "",
            f"The job was {row.get('job_state')} with {row.get('predicted_during', 0):,} tasks "
            "predicted when the loops ended (then cancelled).",
        ]
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
