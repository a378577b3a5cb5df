"""`Prediction`, and the check that turns whatever a model returned into what Label Studio reads.

Label Studio matches `results[i]` to `tasks[i]` by position and drops the whole batch when the
counts differ, stores nothing for an item without `result`, and answers its users 400 when a
`model_version` is null. `normalize` makes each of those mistakes a clear error instead.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard, cast

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

_BIG = 1e300  # an int beyond this goes the long way: float() may not hold it
_ONLY_DICTS = frozenset({dict})


def normalize(
    output: object, count: int, *, model_version: str, source: str, check_json: bool = True
) -> list[Entry]:
    """Check a model's output for `count` tasks and return Label Studio's `results` list.

    `source` names the model in error messages, e.g. `"Squirrel.predict"`. With `check_json`
    (the default), the entries are also made JSON-safe (`json_safe`); a caller that serializes
    them at once may skip it and call `json_safe` only when serializing fails.
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
    plain = _plain
    normalized: list[Entry | None] = [
        plain(item, model_version) if type(item) is dict else None for item in entries
    ]
    if None in normalized:  # the long way for whatever is not a well-formed dict
        for index, item in enumerate(entries):
            if normalized[index] is None:
                normalized[index] = _entry(item, model_version, source, index)
    done = cast("list[Entry]", normalized)
    return json_safe(done, source) if check_json else done


def _plain(item: dict[str, Any], version: str) -> dict[str, Any] | None:
    """The common case, a well-formed dict, checked quickly; None sends it the long way."""
    result = item.get("result")
    if type(result) is not list or (result and not _ONLY_DICTS.issuperset(map(type, result))):
        return None
    score = item.get("score")
    if not (
        (type(score) is float and math.isfinite(score))
        or (type(score) is int and -_BIG < score < _BIG)
    ):
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
    elif (number := real_number(score)) is None:
        raise ModelOutputError(
            f"{source} {position}: 'score' must be a finite number, got {score!r}"
        )
    else:
        score = number
    if item_version is None:
        item_version = version
    elif not isinstance(item_version, str) or not item_version:
        raise ModelOutputError(f"{source} {position}: 'model_version' must be a non-empty string")
    return {"result": result, "score": float(score), "model_version": item_version}


def _empty(version: str) -> dict[str, Any]:
    return {"result": [], "score": 0.0, "model_version": version}


def _mean_region_score(result: list[Any]) -> float:
    scores = [s for r in result if (s := real_number(r.get("score"))) is not None]
    return sum(scores) / len(scores) if scores else 0.0


def plain_number(value: object) -> int | float | None:
    """`value` as a Python `int` or `float` when it is a real number, else None.

    Real numbers are `int`, `float`, any `numbers.Real` (e.g. `Fraction`), NumPy scalars such
    as `np.float32` or `np.int64`, 0-d arrays, and other single values that `float()` converts
    (a 0-d tensor, a `Decimal`); integers stay integers. `bool`, strings and complex numbers
    are not real numbers. NumPy is never imported: its values are recognised by their `dtype`.
    """
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[return-value]
    if isinstance(value, (bool, str, bytes, bytearray)):
        return None
    dtype_kind = getattr(getattr(value, "dtype", None), "kind", None)
    if dtype_kind in ("b", "c") or getattr(value, "ndim", 0) != 0:
        return None  # a NumPy bool or complex, or an array of several values
    if not (isinstance(value, numbers.Real) or hasattr(kind, "__float__")):
        return None
    integral = isinstance(value, numbers.Integral) or dtype_kind in ("i", "u")
    number: Any = value
    try:
        return int(number) if integral else float(number)
    except (TypeError, ValueError, OverflowError):
        return None


def real_number(value: object) -> float | None:
    """`value` as a finite `float` when it is a real number (see `plain_number`), else None."""
    if type(value) is float:
        return value if math.isfinite(value) else None
    number = plain_number(value)
    if number is None:
        return None
    try:
        converted = float(number)
    except OverflowError:
        return None
    return converted if math.isfinite(converted) else None


MAX_DEPTH = 64
"""How deep a `result` item may nest (Label Studio's are 3 or 4 levels deep)."""


def json_safe(entries: list[Entry], source: str) -> list[Entry]:
    """`entries` as JSON can hold them: unchanged when they already serialize (the common case).

    Otherwise NumPy scalars, 0-d and n-d arrays and other real numbers in `result` become
    Python numbers and lists; what JSON still cannot hold (NaN, infinity, bytes, sets, other
    objects) is a `ModelOutputError` naming the entry and the path of the value.
    """
    try:
        json.dumps(entries, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return [_safe_entry(entry, source, f"entry {i}") for i, entry in enumerate(entries)]
    return entries


def _safe_entry(entry: Entry, source: str, position: str) -> Entry:
    if isinstance(entry, list):
        return [_safe_prediction(p, source, f"{position}[{j}]") for j, p in enumerate(entry)]
    return _safe_prediction(entry, source, position)


def _safe_prediction(prediction: dict[str, Any], source: str, position: str) -> dict[str, Any]:
    try:
        result = _safe(prediction["result"], "result", 0)
    except _Unserializable as bad:
        raise ModelOutputError(f"{source} {position}: {bad}") from None
    return {**prediction, "result": result}


class _Unserializable(Exception):
    pass


def _safe(value: Any, path: str, depth: int) -> Any:
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Unserializable(f"{path} is {value}: JSON has no NaN or infinity")
        return value
    if depth >= MAX_DEPTH:
        raise _Unserializable(f"{path} nests deeper than {MAX_DEPTH} levels (or refers to itself)")
    if is_mapping(value):
        out = {}
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float))):  # as json.dumps
                raise _Unserializable(f"{path} has a key {key!r}: JSON keys must be strings")
            name = f"{path}.{key}" if str(key).isidentifier() else f"{path}[{key!r}]"
            out[key] = _safe(item, name, depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_safe(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value)]
    number = plain_number(value)
    if number is not None:
        return _safe(number, path, depth)
    kind = type(value).__name__
    if getattr(value, "ndim", 0) and callable(getattr(value, "tolist", None)):
        return _safe(value.tolist(), path, depth)  # an array: the list it holds
    if getattr(getattr(value, "dtype", None), "kind", None) == "b":
        return bool(value)
    hint = {
        "bytes": "decode it to a str",
        "bytearray": "decode it to a str",
        "set": "make it a list",
        "frozenset": "make it a list",
    }.get(kind, "use a str, number, bool, None, list or dict")
    raise _Unserializable(f"{path} has type {kind}, which JSON cannot hold: {hint}")


def is_mapping(value: object) -> TypeGuard[Mapping[str, Any]]:
    """`isinstance(value, Mapping)`, fast for the dicts JSON gives."""
    return type(value) is dict or isinstance(value, Mapping)
