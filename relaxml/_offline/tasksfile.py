"""Tasks files as Label Studio writes and reads them.

Label Studio exports tasks as a JSON list of `{"id", "data", "annotations", "predictions", ...}`
and imports a JSON list of `{"data": ..., "predictions": [...]}` or of plain data objects (each
object is then the task's data), one object, or JSON lines. `read_tasks` takes any of them;
`write_import` writes Label Studio's import format, ready for *Import* or the import API.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..prediction import Entry


class TasksFileError(Exception):
    """The file is not a tasks file; the message says where and why."""


def read_tasks(path: Path) -> list[dict[str, Any]]:
    """The tasks of a JSON or JSON-lines file, each `{"id": int, "data": {...}, ...}`.

    A task without an integer `id` gets its position (1, 2, ...) unless that is taken.
    """
    text = path.read_text(encoding="utf-8")
    try:
        loaded: Any = json.loads(text)
    except json.JSONDecodeError as error:
        loaded = _json_lines(text, path, error)
    items = loaded if isinstance(loaded, list) else [loaded]
    tasks = [_task(item, index, path) for index, item in enumerate(items)]
    taken = {task["id"] for task in tasks if isinstance(task.get("id"), int)}
    free = (n for n in range(1, len(tasks) + len(taken) + 1) if n not in taken)
    for task in tasks:
        if not isinstance(task.get("id"), int) or isinstance(task.get("id"), bool):
            task["id"] = next(free)
    return tasks


def _json_lines(text: str, path: Path, error: json.JSONDecodeError) -> list[Any]:
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise TasksFileError(f"{path}: not JSON ({error})") from None
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as line_error:
            raise TasksFileError(
                f"{path}, line {number}: neither a JSON document nor JSON lines ({line_error})"
            ) from None
    return items


def _task(item: Any, index: int, path: Path) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise TasksFileError(
            f"{path}: task {index + 1} is {type(item).__name__}, not an object: a task is "
            '{"data": {...}} or the data object itself'
        )
    data = item.get("data")
    if isinstance(data, dict):
        return dict(item)
    if "data" in item:
        raise TasksFileError(f"{path}: task {index + 1}: 'data' must be an object")
    return {"data": item}  # Label Studio imports a plain object as the task's data


def write_import(path: Path, tasks: Sequence[dict[str, Any]], entries: Sequence[Entry]) -> int:
    """Write each task's data (and annotations) with its new predictions, in Label Studio's
    import format. Returns how many predictions were written."""
    written, out = 0, []
    for task, entry in zip(tasks, entries, strict=True):
        predictions = entry if isinstance(entry, list) else [entry]
        kept = [p for p in predictions if p.get("result")]
        written += len(kept)
        item: dict[str, Any] = {"data": task["data"], "predictions": kept}
        if task.get("annotations"):
            item["annotations"] = task["annotations"]
        out.append(item)
    path.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return written
