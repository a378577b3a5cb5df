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


# The model that loads weights (overhead benchmark, second scenario): its constructor builds a
# lookup table of this many entries in pure Python, about 20 ms of CPU on the machine of the
# committed results. Real models take 100 ms to seconds to load, so this is a low stand-in.
TABLE_ENTRIES = 70_000


def load_table(entries: int = TABLE_ENTRIES) -> dict[str, float]:
    """Stand-in for loading weights: a fixed amount of pure-Python work (holds the GIL)."""
    table = {}
    for i in range(entries):
        table[f"w{i}"] = (i * 2654435761 % 1000003) / 1000003
    return table


def loaded_prediction(
    table: dict[str, float], task_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    """The loaded model's prediction: the trivial one, after one look-up in its table."""
    _ = table[f"w{task_id % len(table)}"]  # a KeyError if the table is not loaded
    return prediction(task_id, data)


# The batching model (micro-batching benchmark): each call costs a fixed 20 ms plus 0.2 ms per
# task, waiting with the GIL released, like one forward pass of native inference code.
BATCH_CALL_SECONDS = 0.020
BATCH_TASK_SECONDS = 0.0002


def batch_wait(tasks: int) -> None:
    """The batching model's work for one call of `tasks` tasks."""
    time.sleep(BATCH_CALL_SECONDS + BATCH_TASK_SECONDS * tasks)
