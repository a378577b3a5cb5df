"""A model for end-to-end tests that writes down the prompts of every interactive call.

Each interactive `predict` appends one JSON line to the file named by `RELAXML_TEST_PROMPTS`:
a list of `[kind, positive, label, [x, y] rounded]` for the call's `context.prompts`.
"""

from __future__ import annotations

import json
import os

from relaxml import Context, LabelStudioModel, Prediction, Task


class PromptRecorder(LabelStudioModel):
    model_version = "prompts-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        if context.is_interactive:
            seen = [
                [p.kind, p.positive, p.label, [round(v) for v in p.point or ()]]
                for p in context.prompts
            ]
            with open(os.environ["RELAXML_TEST_PROMPTS"], "a", encoding="utf-8") as out:
                out.write(json.dumps(seen) + "\n")
        return [Prediction(result=[], score=0.0) for _ in tasks]
