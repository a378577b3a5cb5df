"""Request bodies shaped like the ones Label Studio 1.23.2 sends (see tests/fixtures)."""

from __future__ import annotations

import json
from typing import Any

LABEL_CONFIG = """<View>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="single" showInLine="true">
    <Choice value="positive"/>
    <Choice value="negative"/>
  </Choices>
</View>"""

PROJECT = "1.1795846025"

_TEXTS = (
    "I love this phone, the camera is great",
    "Terrible battery, worst purchase this year",
    "The delivery was quick and the box was nice",
    "Boring film, I almost fell asleep",
)


def task(task_id: int) -> dict[str, Any]:
    """One task as Label Studio's `TaskSimpleSerializer` writes it."""
    return {
        "id": task_id,
        "data": {"text": _TEXTS[task_id % len(_TEXTS)]},
        "meta": {},
        "created_at": "2026-11-28T06:07:05.281777Z",
        "updated_at": "2026-11-28T06:07:05.281807Z",
        "is_labeled": False,
        "overlap": 1,
        "inner_id": task_id,
        "total_annotations": 0,
        "cancelled_annotations": 0,
        "total_predictions": 0,
        "comment_count": 0,
        "unresolved_comment_count": 0,
        "last_comment_updated_at": None,
        "project": 1,
        "updated_by": None,
        "file_upload": None,
        "comment_authors": [],
        "annotations": [],
        "predictions": [],
    }


def predict_body(tasks: int) -> bytes:
    """A `/predict` body with `tasks` tasks, as a batch "Retrieve Predictions" sends it."""
    body = {
        "tasks": [task(i) for i in range(1, tasks + 1)],
        "project": PROJECT,
        "label_config": LABEL_CONFIG,
        "params": {"login": None, "password": None, "context": None},
    }
    return json.dumps(body).encode()
