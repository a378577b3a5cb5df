"""The trivial model's logic, shared word for word by every server the suite compares.

Pure standard library, so the incumbent (which runs in its own virtual environment) imports
the very same function as relaxml and the bare Starlette floor.
"""

from __future__ import annotations

import time
from typing import Any

MODEL_VERSION = "trivial-1"
SCORE = 0.9
SLOW_SECONDS_PER_TASK = 0.2


def label(task_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """One `choices` region for a text task: "positive" when the text has an even length."""
    text = data.get("text")
    choice = "positive" if isinstance(text, str) and len(text) % 2 == 0 else "negative"
    return {
        "id": f"t{task_id}",
        "from_name": "sentiment",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [choice]},
        "score": SCORE,
    }


def prediction(task_id: int, data: dict[str, Any]) -> dict[str, Any]:
    """The complete prediction for one task, as Label Studio reads it."""
    return {"result": [label(task_id, data)], "score": SCORE, "model_version": MODEL_VERSION}


def slow_wait(tasks: int) -> None:
    """The slow model's work: 200 ms per task, waiting (as native inference code does).

    `time.sleep` releases the GIL, like numpy, torch or onnxruntime while they compute.
    """
    time.sleep(SLOW_SECONDS_PER_TASK * tasks)


def slow_spin(tasks: int) -> None:
    """The slow model's work: 200 ms per task of pure-Python computing, holding the GIL."""
    deadline = time.perf_counter() + SLOW_SECONDS_PER_TASK * tasks
    counter = 0
    while time.perf_counter() < deadline:
        counter += 1
