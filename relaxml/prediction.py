"""`Prediction`, and the check that turns whatever a model returned into what Label Studio reads.

Label Studio matches `results[i]` to `tasks[i]` by position and drops the whole batch when the
counts differ, stores nothing for an item without `result`, and answers its users 400 when a
`model_version` is null. `normalize` makes each of those mistakes a clear error instead.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from .errors import ModelOutputError


@dataclass
class Prediction:
    """One prediction for one task.

    - `result`: the list of regions / classifications (Label Studio's `result` format).
    - `score`: the overall confidence. When omitted, relaxml uses the mean of the regions'
      `score` values, or 0.0 when no region has one.
    - `model_version`: defaults to the model's current version.
    """

    result: list[dict[str, Any]] = field(default_factory=list)
    score: float | None = None
    model_version: str | None = None


PredictionLike = Prediction | Mapping[str, Any]
"""A `Prediction`, or a plain dict with `result` and optional `score` and `model_version`."""

TaskOutput = PredictionLike | Sequence[PredictionLike] | None
"""What `predict` may return for one task: a prediction, a list of them, or None."""

Entry = dict[str, Any] | list[dict[str, Any]]


def normalize(output: object, count: int, *, model_version: str, source: str) -> list[Entry]:
    """Check a model's output for `count` tasks and return Label Studio's `results` list.

    `source` names the model in error messages, e.g. `"Squirrel.predict"`.
    """
    if isinstance(output, (str, bytes, Mapping, Prediction)) or not isinstance(output, Iterable):
        raise ModelOutputError(
            f"{source} must return a list with one entry per task, got {type(output).__name__}"
        )
    entries = list(output)
    if len(entries) != count:
        raise ModelOutputError(
            f"{source} returned {len(entries)} entries for {count} tasks: return exactly one "
            "entry per task, in the order of the tasks (None for a task with no prediction)"
        )
    normalized: list[Entry] = []
    for index, item in enumerate(entries):
        fast = _plain(item, model_version) if type(item) is dict else None
        normalized.append(fast or _entry(item, model_version, source, index))
    return normalized


def _plain(item: dict[str, Any], version: str) -> dict[str, Any] | None:
    """The common case, a well-formed dict, checked quickly; None sends it the long way."""
    result = item.get("result")
    if type(result) is not list or any(type(region) is not dict for region in result):
        return None
    score = item.get("score")
    if not ((type(score) is float and math.isfinite(score)) or type(score) is int):
        return None
    model_version = item.get("model_version", version)
    if type(model_version) is not str or not model_version:
        return None
    return {"result": result, "score": float(score), "model_version": model_version}


def _entry(item: object, version: str, source: str, index: int) -> Entry:
    if item is None:
        return _empty(version)
    if isinstance(item, Prediction) or is_mapping(item):
        return _one(item, version, source, f"entry {index}")
    if isinstance(item, (list, tuple)):
        if not item:
            return _empty(version)
        return [_one(p, version, source, f"entry {index}[{j}]") for j, p in enumerate(item)]
    raise ModelOutputError(
        f"{source} entry {index} must be a Prediction, a dict with 'result', a list of them, "
        f"or None; got {type(item).__name__}"
    )


def _one(item: object, version: str, source: str, position: str) -> dict[str, Any]:
    if isinstance(item, Prediction):
        result, score, item_version = item.result, item.score, item.model_version
    elif is_mapping(item):
        if "result" not in item:
            raise ModelOutputError(
                f"{source} {position} has no 'result' key (keys: {sorted(map(str, item))}); "
                "Label Studio skips such predictions"
            )
        result, score, item_version = item["result"], item.get("score"), item.get("model_version")
    else:
        raise ModelOutputError(
            f"{source} {position} must be a Prediction or a dict with 'result', "
            f"got {type(item).__name__}"
        )
    if type(result) is not list or not all(type(r) is dict or is_mapping(r) for r in result):
        raise ModelOutputError(
            f"{source} {position}: 'result' must be a list of dicts (one per region)"
        )
    if score is None:
        score = _mean_region_score(result)
    elif not _is_number(score):
        raise ModelOutputError(
            f"{source} {position}: 'score' must be a finite number, got {score!r}"
        )
    if item_version is None:
        item_version = version
    elif not isinstance(item_version, str) or not item_version:
        raise ModelOutputError(f"{source} {position}: 'model_version' must be a non-empty string")
    return {"result": result, "score": float(score), "model_version": item_version}


def _empty(version: str) -> dict[str, Any]:
    return {"result": [], "score": 0.0, "model_version": version}


def _mean_region_score(result: list[Any]) -> float:
    scores = [r["score"] for r in result if _is_number(r.get("score"))]
    return sum(scores) / len(scores) if scores else 0.0


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """`isinstance(value, Mapping)`, fast for the dicts JSON gives."""
    return type(value) is dict or isinstance(value, Mapping)
