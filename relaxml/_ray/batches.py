"""`ChunkPredictor`: one copy of the model per Ray actor, predicting chunks of tasks.

A row of the dataset is one chunk, exactly as `--engine local` cuts them (`max_batch_size`
tasks, 32 when unset), carried as a JSON string (`{"start": ..., "tasks": [...]}`): Ray Data
would give raw task dicts every other task's keys as None. The actor predicts it with
`ModelRun.chunk`, as the local runner does (out of memory or raising: split down to the tasks
that fail alone, which get error entries), and answers a JSON string too, the chunk's
`Outcome`. A model exception therefore never fails a block: only a dead actor process could.
"""

from __future__ import annotations

import json
from typing import Any

from .._offline.engines import ModelSpec, build_model
from .._offline.runner import ModelRun, Outcome
from ..labels.validation import Problem


def encode_chunk(start: int, tasks: list[dict[str, Any]]) -> str:
    """A dataset row: the chunk of tasks starting at position `start`."""
    return json.dumps({"start": start, "tasks": tasks}, ensure_ascii=False)


def encode_outcome(start: int, outcome: Outcome) -> str:
    """An answer row: the outcome of the chunk that starts at `start`."""
    problems = {
        str(i): [[p.code, p.message, p.index] for p in found]
        for i, found in outcome.problems.items()
    }
    failed = {str(i): detail for i, detail in outcome.failed.items()}
    body = {"start": start, "entries": outcome.entries, "problems": problems, "failed": failed}
    return json.dumps(body, ensure_ascii=False)


def decode_outcome(text: str) -> tuple[int, Outcome]:
    """The start and the outcome of an answer row."""
    body = json.loads(text)
    problems = {
        int(i): [Problem(code, message, index) for code, message, index in found]
        for i, found in body["problems"].items()
    }
    failed = {int(i): str(detail) for i, detail in body["failed"].items()}
    return int(body["start"]), Outcome(body["entries"], problems, failed)


class ChunkPredictor:
    """The callable class `map_batches` runs in each actor of the pool: the model is built,
    loaded, set up and warmed up once, in `__init__`."""

    def __init__(self, spec: ModelSpec) -> None:
        """Build the model as `relaxml predict` (or `annotate`) builds it."""
        model = build_model(spec)
        self.run = ModelRun(model, spec.label_config, spec.settings)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Predict each chunk of `batch["chunk"]`; its outcomes as `done`."""
        import numpy  # a dependency of Ray, so present wherever this runs

        done = []
        for text in batch["chunk"]:
            chunk = json.loads(text)
            outcome = self.run.chunk(chunk["tasks"])
            done.append(encode_outcome(chunk["start"], outcome))
        return {"done": numpy.array(done, dtype=object)}

    def __del__(self) -> None:
        run = getattr(self, "run", None)
        if run is not None:
            run.close()


def predictor_for(spec: ModelSpec) -> type[ChunkPredictor]:
    """A `ChunkPredictor` class bound to `spec`, built with no argument: the spec travels with
    the class, not as constructor arguments in Ray's object store (an actor restarted after
    they were freed could not be built again)."""

    class Bound(ChunkPredictor):
        def __init__(self) -> None:
            super().__init__(spec)

    Bound.__name__ = Bound.__qualname__ = "ChunkPredictor"
    return Bound
