"""Fetching training data from Label Studio: every annotated task of a project, page by page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .client import LabelStudioClient, LabelStudioError


def annotated_tasks(
    client: LabelStudioClient,
    project_id: int,
    *,
    since: float | None = None,
    page_size: int = 100,
) -> Iterator[dict[str, Any]]:
    """Yield each task of the project that has at least one non-cancelled annotation.

    Tasks come with their `annotations` (cancelled ones removed), one page of `page_size` at a
    time, so a large project never sits in memory whole. With `since` (a Unix time), only tasks
    with an annotation created or updated after it are yielded.
    """
    page = 1
    while True:
        try:
            answer = client.request(
                "GET",
                "api/tasks",
                params={
                    "project": project_id,
                    "page": page,
                    "page_size": page_size,
                    "fields": "all",
                },
            )
        except LabelStudioError as exc:
            if exc.status_code == 404 and page > 1:  # past the last page
                return
            raise
        body = answer.json()
        tasks = body.get("tasks", []) if isinstance(body, dict) else body
        if not tasks:
            return
        for task in tasks:
            annotations = [
                a
                for a in task.get("annotations") or []
                if isinstance(a, dict) and not a.get("was_cancelled")
            ]
            if not annotations:
                continue
            if since is not None and max(map(_changed_at, annotations)) <= since:
                continue
            yield {**task, "annotations": annotations}
        if len(tasks) < page_size:
            return
        page += 1


def _changed_at(annotation: dict[str, Any]) -> float:
    stamps = [annotation.get("updated_at"), annotation.get("created_at")]
    times = [
        datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
        for s in stamps
        if isinstance(s, str)
    ]
    return max(times, default=float("inf"))
