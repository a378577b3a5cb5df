"""A model for end-to-end tests: one choice per task, and a `fit` that records what it got.

Each `fit` call appends one JSON line to the file named by `RELAXML_TEST_EVENTS`.
"""

from __future__ import annotations

import json
import os
from typing import Any

from relaxml import Context, LabelStudioModel, Prediction, Task, TrainingEvent


class Recorder(LabelStudioModel):
    model_version = "recorder-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        return [Prediction(result=[self.region(context)], score=0.5) for _ in tasks]

    @staticmethod
    def region(context: Context) -> dict[str, Any]:
        return {
            "from_name": "sentiment",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["positive" if not context.is_interactive else "negative"]},
        }

    def fit(self, event: TrainingEvent) -> str | None:
        record = {
            "action": event.action,
            "project_id": event.project_id,
            "annotations": len(event.annotations),
        }
        with open(os.environ["RELAXML_TEST_EVENTS"], "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return None


class Paced(Recorder):
    """Recorder that takes `RELAXML_TEST_TASK_DELAY` seconds per task, 25 tasks per call."""

    model_version = "paced-1"
    max_batch_size = 25

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        import time

        time.sleep(float(os.environ.get("RELAXML_TEST_TASK_DELAY", "0")) * len(tasks))
        return super().predict(tasks, context)
