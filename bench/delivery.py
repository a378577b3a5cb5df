"""Benchmark 4, delivery: a bulk "Retrieve Predictions" against a real Label Studio 1.23.2.

The benchmark starts its own Label Studio (tests/support/labelstudio.py) on a free loopback port,
with its own data directory in the run's scratch directory, and stops it at the end. Three
projects get the same N text tasks (10,000; 200 in quick mode), imported 1,000 at a time:

- **background**: relaxml serves the trivial model with `RELAXML_DELIVERY=background` and
  `LABEL_STUDIO_API_KEY` and `LABEL_STUDIO_URL` set to Label Studio's token and address. The Data
  Manager action "Retrieve Predictions" over all tasks (what a user clicks) sends them in one
  `/predict`; relaxml answers at once, then predicts and POSTs the predictions to Label Studio's
  API. Measured: the action's time, relaxml's own time for the `/predict` (its access-log line),
  when relaxml queued the job, and when its `GET /jobs` says the job is done (every prediction
  confirmed by Label Studio); then Label Studio's `GET /api/predictions/?project=` must hold
  exactly one prediction of the model's version per task.
- **direct**: the same, but the N-task `/predict` body (shaped as Label Studio sends it) is
  POSTed to relaxml directly, so Label Studio's own work before it calls the backend (reading
  and serializing N tasks) is left out.
- **limit**: no relaxml: the trivial model's predictions for the N tasks (relaxml's payload:
  `{"task", "result", "score", "model_version"}`) POSTed straight to Label Studio's
  `POST /api/projects/{id}/import/predictions` in relaxml's import size (`delivery_batch`,
  5,000 by default), one import after another, the bodies serialized beforehand. Measured from
  the first POST until the last one returns: the least time in which Label Studio stores these
  predictions through its API, the limit any backend delivering them is measured against.
- **inline**: relaxml with `RELAXML_DELIVERY=inline`; "Retrieve Predictions" on chunks of 500
  selected task ids (`selectedItems: {"all": false, "included": [...]}`) one after another,
  as a user must with a model too slow to answer every task within Label Studio's 100 s
  timeout. Label Studio stores each chunk's predictions before its action returns.

The background and direct rows run relaxml at log level `debug`, whose delivery logs one line
per import into Label Studio (its size and time); the rows report them (`imports`). The ratios
to the limit: relaxml's time until its last prediction is stored ÷ the limit, for the direct row
from the POST, for the background row from the click and from relaxml's receipt of the request
(the click plus Label Studio's side, which no backend can shorten).

Label Studio's first start on a fresh data directory runs its migrations (about 30 s on 2
cores). The suite does that once and keeps the migrated, empty database under the user's
cache directory; each run starts Label Studio on a copy of it in a new data directory.
Without a Label Studio install, quick mode reports "not measured"; a full run installs it
(about 3 minutes, once).
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import re
import secrets
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import payloads
import trivial
from common import HOST, REPO_DIR, Server, rounded, start_server, stop_server, wait_healthy
from load import post_json
from suite import RELAXML, Suite, relaxml_spec

from relaxml.settings import Settings

if str(REPO_DIR) not in sys.path:
    sys.path.append(str(REPO_DIR))  # the test harness in tests/support/, imported as a package

from tests.support import labelstudio
from tests.support.labelstudio import LabelStudio
from tests.support.processes import free_port

NAME = "delivery"
IMPORT_BATCH = 1000
PREDICT_TARGET_S = 1.0
DATABASE = "label_studio.sqlite3"
_PREDICT_LINE = re.compile(r"POST /predict (\d+) ([\d.]+) ms \((\d+) tasks?\)")
_IMPORT_LINE = re.compile(r"imported (\d+) predictions in ([\d.]+) s")
LABEL_STUDIO = "label-studio"  # the limit row's server: Label Studio alone


def run(suite: Suite) -> dict[str, Any]:
    tasks = suite.scale(200, 10_000)
    chunk = suite.scale(50, 500)
    settings = {
        "tasks": tasks,
        "inline_chunk": chunk,
        "import_batch": IMPORT_BATCH,
        "delivery_batch": Settings.from_env().delivery_batch,
        "label_studio": labelstudio.LABEL_STUDIO_VERSION,
        "model": "Trivial",
    }
    executable, note = _label_studio_executable(suite)
    if executable is None:
        rows = [{"server": _server(p), "path": p, "measured": False, "note": note} for p in PATHS]
        return {"settings": settings, "rows": rows, "note": note}
    timeout = suite.scale(120.0, 900.0)
    data_dir = suite.workdir / "label-studio"
    token = _prepare_data_dir(executable, data_dir)
    ls = LabelStudio(executable, data_dir, free_port(), token=token)
    started = time.perf_counter()
    ls.start()
    settings["label_studio_start_s"] = rounded(time.perf_counter() - started, 1)
    rows = []
    try:
        for path, measure in PATHS.items():
            project_id, task_ids, import_s = _project(ls, f"bench {path}", tasks)
            row = measure(suite, ls, project_id, task_ids, chunk, timeout)
            row["import_s"] = rounded(import_s, 2)
            rows.append({"server": _server(path), "path": path, "measured": True, **row})
    finally:
        ls.stop()
    by_path = {row["path"]: row for row in rows}
    inline_s = by_path["inline"]["total_s"]
    background_s = by_path["background"]["done_s"]
    return {
        "settings": settings,
        "rows": rows,
        "ratio_inline_vs_background": rounded(inline_s / background_s, 2)
        if inline_s and background_s
        else None,
        "vs_limit": _vs_limit(by_path),
        "predict_target_s": PREDICT_TARGET_S,
        "limit_target": LIMIT_TARGET,
    }


LIMIT_TARGET = 1.2
"""relaxml's time until every prediction is stored ÷ the limit's, at most."""


def _server(path: str) -> str:
    return LABEL_STUDIO if path == "limit" else RELAXML


def _vs_limit(rows: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    """relaxml's time until the last prediction is stored ÷ the limit's, per way of measuring."""
    limit = rows["limit"]["limit_s"]
    bg, direct = rows["background"], rows["direct"]
    times = {
        "background_from_receipt": bg["done_after_receipt_s"],
        "background_from_click": bg["done_s"],
        "direct": direct["done_s"],
    }
    return {key: rounded(value / limit, 2) if limit else None for key, value in times.items()}


def _label_studio_executable(suite: Suite) -> tuple[Path | None, str | None]:
    """Label Studio's executable; in quick mode only an existing install, else install it."""
    executable = labelstudio.default_venv() / "bin" / "label-studio"
    if executable.exists():
        return executable, None
    if suite.quick:
        return None, f"not measured: no Label Studio {labelstudio.LABEL_STUDIO_VERSION} install"
    try:
        return labelstudio.find_or_install_label_studio(progress=_say), None
    except labelstudio.LabelStudioError as exc:
        return None, f"not measured: {str(exc).splitlines()[0][:200]}"


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def _prepare_data_dir(executable: Path, data_dir: Path) -> str:
    """A new data directory holding a copy of the migrated, empty database; our user's token."""
    template = _template(executable)
    data_dir.mkdir(parents=True)
    shutil.copy2(template / DATABASE, data_dir / DATABASE)
    return (template / "token").read_text().strip()


def _template(executable: Path) -> Path:
    """The cached data directory of a Label Studio started once (migrated, one user)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "relaxml-bench"
    template = cache / f"label-studio-{labelstudio.LABEL_STUDIO_VERSION}-data"
    if (template / "token").is_file():
        return template
    cache.mkdir(parents=True, exist_ok=True)
    with labelstudio.exclusive_lock(cache / (template.name + ".lock")):
        if (template / "token").is_file():
            return template
        building = cache / f"{template.name}.{os.getpid()}"
        shutil.rmtree(building, ignore_errors=True)
        token = secrets.token_hex(20)
        _say("migrating a Label Studio database once (about 30 s), kept in " + str(template))
        ls = LabelStudio(executable, building, free_port(), token=token)
        ls.start()
        ls.stop()
        (building / "token").write_text(token + "\n")
        shutil.rmtree(template, ignore_errors=True)
        building.rename(template)
    return template


def _project(ls: LabelStudio, title: str, count: int) -> tuple[int, list[int], float]:
    """A project with `count` text tasks, imported in batches; its id, task ids, import time."""
    project = ls.create_project(title, payloads.LABEL_CONFIG)
    started = time.perf_counter()
    task_ids: list[int] = []
    for first in range(0, count, IMPORT_BATCH):
        numbers = range(first, min(count, first + IMPORT_BATCH))
        batch = [{"data": payloads.task(i)["data"]} for i in numbers]
        task_ids += ls.import_tasks(project["id"], batch)
    return project["id"], task_ids, time.perf_counter() - started


def _relaxml(suite: Suite, ls: LabelStudio, path: str, delivery: str) -> Server:
    env = {
        "RELAXML_DELIVERY": delivery,
        "LABEL_STUDIO_API_KEY": ls.token,
        "LABEL_STUDIO_URL": ls.url,
    }
    if delivery == "background":
        env["RELAXML_LOG_LEVEL"] = "debug"  # a line per import into Label Studio (_imports)
    spec = relaxml_spec("Trivial", suite.workdir / f"relaxml-data-delivery-{path}", env)
    spec.name = f"relaxml-delivery-{path}"
    server = start_server(spec, suite.log_dir, suite.pinning.server)
    wait_healthy(server)
    return server


def _background(
    suite: Suite, ls: LabelStudio, project_id: int, task_ids: list[int], chunk: int, timeout: float
) -> dict[str, Any]:
    """The Data Manager action over every task, relaxml delivering in the background."""
    server = _relaxml(suite, ls, "background", "background")
    try:
        ls.register_ml_backend(project_id, server.url())
        clicked_wall, clicked = time.time(), time.perf_counter()
        answer = ls.retrieve_predictions(project_id)
        action_s = time.perf_counter() - clicked
        job, done_s = _wait_done(server, clicked, timeout)
        calls = _predict_lines(server)
        imports = _imports(server)
    finally:
        stop_server(server)
    predict_s = _bulk_call(calls, len(task_ids))
    row = _checked(ls, project_id, task_ids)
    received = job["created_at"] - clicked_wall - predict_s  # at the latest
    return {
        **row,
        **imports,
        "action_s": rounded(action_s, 2),
        "action_answer": answer,
        "predict_s": rounded(predict_s, 3),
        "label_studio_s": rounded(action_s - predict_s, 2) if predict_s is not None else None,
        "queued_after_s": rounded(job["created_at"] - clicked_wall, 2),
        "done_s": rounded(done_s, 2),
        "done_after_action_s": rounded(done_s - action_s, 2),
        "received_after_s": rounded(received, 2),
        "done_after_receipt_s": rounded(done_s - received, 2),
        "predicted_after_receipt_s": rounded(job.get("predicted_s", done_s) - received, 2),
        "first_stored_after_receipt_s": rounded(job.get("first_stored_s", done_s) - received, 2),
        "tasks_per_s": rounded(len(task_ids) / done_s, 1),
        "job_done": job["done"],
        "job_failed": job["failed"],
        "predict_calls": len(calls),
    }


def _direct(
    suite: Suite, ls: LabelStudio, project_id: int, task_ids: list[int], chunk: int, timeout: float
) -> dict[str, Any]:
    """The same N-task /predict body POSTed to relaxml directly (Label Studio's side left out)."""
    server = _relaxml(suite, ls, "direct", "background")
    try:
        ls.register_ml_backend(project_id, server.url())  # /setup tells relaxml Label Studio's URL
        project = ls.api("GET", f"/api/projects/{project_id}").json()
        body = _predict_body(project, task_ids)
        sent = time.perf_counter()
        status, answer = post_json(server.port, "/predict", body, timeout=300)
        post_s = time.perf_counter() - sent
        if status != 200 or not isinstance(answer, dict) or answer.get("queued") != len(task_ids):
            raise RuntimeError(f"the direct /predict answered {status}: {str(answer)[:300]}")
        job, done_s = _wait_done(server, sent, timeout)
        calls = _predict_lines(server)
        imports = _imports(server)
    finally:
        stop_server(server)
    predict_s = _bulk_call(calls, len(task_ids))
    row = _checked(ls, project_id, task_ids)
    return {
        **row,
        **imports,
        "body_bytes": len(body),
        "post_s": rounded(post_s, 3),
        "predict_s": rounded(predict_s, 3),
        "done_s": rounded(done_s, 2),
        "done_after_answer_s": rounded(done_s - post_s, 2),
        "predicted_s": rounded(job.get("predicted_s", done_s), 2),
        "first_stored_s": rounded(job.get("first_stored_s", done_s), 2),
        "tasks_per_s": rounded(len(task_ids) / done_s, 1),
        "job_done": job["done"],
        "job_failed": job["failed"],
        "predict_calls": len(calls),
    }


def _limit(
    suite: Suite, ls: LabelStudio, project_id: int, task_ids: list[int], chunk: int, timeout: float
) -> dict[str, Any]:
    """The same predictions POSTed straight to Label Studio's bulk import, in relaxml's size."""
    size = Settings.from_env().delivery_batch
    predictions = [
        {"task": task_id, **trivial.prediction(task_id, payloads.task(number)["data"])}
        for number, task_id in enumerate(task_ids)
    ]
    bodies = [
        json.dumps(predictions[first : first + size]).encode()
        for first in range(0, len(predictions), size)
    ]
    path = f"/api/projects/{project_id}/import/predictions"
    headers = {"Content-Type": "application/json"}
    import_s: list[float] = []
    started = time.perf_counter()
    for body in bodies:
        sent = time.perf_counter()
        answer = ls.api("POST", path, data=body, headers=headers, timeout=timeout).json()
        import_s.append(time.perf_counter() - sent)
        if not isinstance(answer, dict) or "created" not in answer:
            raise RuntimeError(f"the import of predictions answered {str(answer)[:300]}")
    limit_s = time.perf_counter() - started
    row = _checked(ls, project_id, task_ids)
    return {
        **row,
        "import_size": size,
        "imports": len(bodies),
        "import_s_each": [rounded(s, 2) for s in import_s],
        "body_bytes": sum(len(body) for body in bodies),
        "limit_s": rounded(limit_s, 2),
        "tasks_per_s": rounded(len(task_ids) / limit_s, 1),
    }


def _inline(
    suite: Suite, ls: LabelStudio, project_id: int, task_ids: list[int], chunk: int, timeout: float
) -> dict[str, Any]:
    """ "Retrieve Predictions" on chunks of selected task ids, relaxml answering inline."""
    server = _relaxml(suite, ls, "inline", "inline")
    chunk_s: list[float] = []
    try:
        ls.register_ml_backend(project_id, server.url())
        started = time.perf_counter()
        for first in range(0, len(task_ids), chunk):
            sent = time.perf_counter()
            ls.retrieve_predictions(project_id, task_ids[first : first + chunk])
            chunk_s.append(time.perf_counter() - sent)
        total_s = time.perf_counter() - started
        calls = _predict_lines(server)
    finally:
        stop_server(server)
    relaxml_s = sum(ms for status, ms, n in calls if n > 1) / 1000
    row = _checked(ls, project_id, task_ids)
    return {
        **row,
        "chunks": len(chunk_s),
        "chunk_s_median": rounded(sorted(chunk_s)[len(chunk_s) // 2], 3),
        "chunk_s_max": rounded(max(chunk_s), 3),
        "total_s": rounded(total_s, 2),
        "predict_s": rounded(relaxml_s, 3),
        "label_studio_s": rounded(total_s - relaxml_s, 2),
        "tasks_per_s": rounded(len(task_ids) / total_s, 1),
        "predict_calls": len(calls),
    }


PATHS: dict[str, Callable[..., dict[str, Any]]] = {
    "limit": _limit,  # first: on the emptiest database, the fastest it can be
    "background": _background,
    "direct": _direct,
    "inline": _inline,
}


def _wait_done(server: Server, since: float, timeout: float) -> tuple[dict[str, Any], float]:
    """Poll relaxml's GET /jobs until its newest job is done; the job, seconds since `since`.

    The job also gets `predicted_s` and `first_stored_s`: seconds since `since` when the poll
    first saw every task predicted, and the first prediction stored in Label Studio.
    """
    deadline = time.perf_counter() + timeout
    marks: dict[str, float] = {}
    while True:
        jobs = _get_json(server, "/jobs").get("jobs") or []
        now = time.perf_counter() - since
        if jobs and jobs[0]["queued"] + jobs[0]["predicting"] == 0:
            marks.setdefault("predicted_s", now)
        if jobs and jobs[0]["done"] > 0:
            marks.setdefault("first_stored_s", now)
        if jobs and jobs[0]["state"] in ("done", "failed"):
            return {**jobs[0], **marks}, now
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the background job was not done after {timeout:.0f} s: {jobs}")
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.spec.name} exited during delivery")
        time.sleep(0.1)


def _get_json(server: Server, path: str) -> dict[str, Any]:
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        conn.request("GET", path)
        answer: dict[str, Any] = json.loads(conn.getresponse().read())
        return answer
    finally:
        conn.close()


def _predict_lines(server: Server) -> list[tuple[int, float, int]]:
    """Every `POST /predict STATUS X ms (N tasks)` line of relaxml's log: (status, ms, N)."""
    text = server.log_path.read_text(errors="replace")
    return [(int(s), float(ms), int(n)) for s, ms, n in _PREDICT_LINE.findall(text)]


def _imports(server: Server) -> dict[str, Any]:
    """The imports into Label Studio relaxml logged: how many, their sizes, their time."""
    text = server.log_path.read_text(errors="replace")
    found = [(int(n), float(s)) for n, s in _IMPORT_LINE.findall(text)]
    sizes = sorted(n for n, _ in found)
    return {
        "imports": len(found),
        "import_sizes": [n for n, _ in found] if len(found) <= 20 else None,
        "import_s_each": [rounded(s, 2) for _, s in found] if len(found) <= 20 else None,
        "import_size_min": sizes[0] if sizes else None,
        "import_size_median": sizes[len(sizes) // 2] if sizes else None,
        "import_size_max": sizes[-1] if sizes else None,
        "import_s_total": rounded(sum(s for _, s in found), 2),
    }


def _bulk_call(calls: list[tuple[int, float, int]], tasks: int) -> float | None:
    """Seconds relaxml took to answer the one /predict of all `tasks` (None: not found)."""
    found = [ms for status, ms, n in calls if status == 200 and n == tasks]
    if len(found) != 1:
        raise RuntimeError(f"expected one /predict of {tasks} tasks in relaxml's log, got {calls}")
    return found[0] / 1000


def _checked(ls: LabelStudio, project_id: int, task_ids: list[int]) -> dict[str, Any]:
    """Label Studio must hold exactly one prediction of the model's version per task."""
    started = time.perf_counter()
    stored = ls.list_predictions(project_id=project_id)
    per_task = Counter(p["task"] for p in stored if p["model_version"] == trivial.MODEL_VERSION)
    exact = per_task == Counter(task_ids)
    if not exact:
        missing = len(set(task_ids) - set(per_task))
        twice = sum(1 for n in per_task.values() if n > 1)
        raise RuntimeError(
            f"Label Studio holds {sum(per_task.values())} predictions of {len(task_ids)} tasks "
            f"({missing} tasks without one, {twice} with more than one)"
        )
    return {
        "stored": sum(per_task.values()),
        "stored_exactly_once": exact,
        "listing_s": rounded(time.perf_counter() - started, 2),
    }


def _predict_body(project: dict[str, Any], task_ids: list[int]) -> bytes:
    """The /predict body "Retrieve Predictions" sends for these tasks (payloads' task shape)."""
    created = datetime.datetime.fromisoformat(project["created_at"].replace("Z", "+00:00"))
    tasks = []
    for number, task_id in enumerate(task_ids):
        task = payloads.task(number)
        task.update(id=task_id, inner_id=number + 1, project=project["id"])
        tasks.append(task)
    body = {
        "tasks": tasks,
        "project": f"{project['id']}.{int(created.timestamp())}",
        "label_config": project["label_config"],
        "params": {"login": None, "password": None, "context": None},
    }
    return json.dumps(body).encode()
