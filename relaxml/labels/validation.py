"""Check a prediction against the labeling config before it leaves relaxml.

Label Studio stores predictions without checking them against the config, and its editor then
silently drops what it cannot show. `check_prediction` finds those mistakes first: unknown
`from_name` or `to_name`, a wrong `type`, labels the control does not have, image coordinates
outside 0-100, a missing `original_width`, malformed values. It never raises: it returns a list
of `Problem`s, empty when the prediction is fine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..prediction import Prediction, is_mapping, plain_number, real_number
from . import rle
from .labelconfig import LabelConfig, LabelConfigError, parse_label_config
from .tags import ControlTag, Label

__all__ = ["Problem", "check_prediction", "check_result"]

_EPS = 1e-6
_IMAGE_TYPES = ("rectangle", "polygon", "keypoint", "ellipse", "brush")
_SPAN_TYPES = ("labels", "hypertextlabels", "paragraphlabels", "timeserieslabels")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prediction.

    `code` is a stable identifier (`unknown-from-name`, `unknown-to-name`, `wrong-type`,
    `unknown-label`, `out-of-range`, `missing-original-size`, `bad-value`, `bad-score`,
    `bad-relation`, `bad-config`, `bad-shape`); `index` is the position of the item in `result`,
    or None for the prediction as a whole; `message` explains it for a person.
    """

    code: str
    message: str
    index: int | None = None

    def __str__(self) -> str:
        return self.message if self.index is None else f"result[{self.index}]: {self.message}"


def check_prediction(
    config: str | LabelConfig, prediction: Mapping[str, Any] | Prediction
) -> list[Problem]:
    """Check one prediction (`{"result": [...], "score": ..., "model_version": ...}` or a
    `Prediction`).

    `config` is the labeling config string (parsed once and cached) or a `LabelConfig`.
    """
    if isinstance(prediction, Prediction):
        prediction = {"result": prediction.result, "score": prediction.score}
    if not is_mapping(prediction):
        return [Problem("bad-shape", f"a prediction must be a dict, got {type(prediction)}")]
    problems: list[Problem] = []
    score = prediction.get("score")
    if score is not None and not _finite(score):
        problems.append(Problem("bad-score", f"score must be a finite number, got {score!r}"))
    result = prediction.get("result")
    if not isinstance(result, list):
        return [*problems, Problem("bad-shape", "'result' must be a list of items")]
    return problems + check_result(config, result)


def check_result(config: str | LabelConfig, result: Sequence[Any]) -> list[Problem]:
    """Check the items of a prediction's `result` list."""
    try:
        parsed = config if isinstance(config, LabelConfig) else parse_label_config(config)
    except (LabelConfigError, TypeError) as error:
        return [Problem("bad-config", f"the label config cannot be read: {error}")]
    ids = {item["id"] for item in result if is_mapping(item) and _is_id(item.get("id"))}
    problems: list[Problem] = []
    for index, item in enumerate(result):
        for code, message in _check_item(parsed, item, ids):
            problems.append(Problem(code, message, index))
    return problems


Found = list[tuple[str, str]]


def _check_item(config: LabelConfig, item: Any, ids: set[str]) -> Found:
    if not is_mapping(item):
        return [("bad-shape", f"an item must be a dict, got {type(item).__name__}")]
    if item.get("type") == "relation":
        return _check_relation(config, item, ids)
    from_name = item.get("from_name")
    control = config.get_control(from_name) if isinstance(from_name, str) else None
    if control is None:
        names = ", ".join(c.name for c in config.controls) or "none"
        return [
            (
                "unknown-from-name",
                f"from_name {from_name!r} is not a control of the label config (controls: "
                f"{names}); the editor drops the item",
            )
        ]
    where = f"{control.tag} {control.name!r}"
    found: Found = []
    to_name = item.get("to_name")
    if to_name not in control.to_names:
        found.append(
            (
                "unknown-to-name",
                f"to_name {to_name!r} is not in the toName of {where} "
                f"({','.join(control.to_names)}); the editor drops the item",
            )
        )
    if item.get("type") != control.type:
        found.append(("wrong-type", f"type {item.get('type')!r} should be {control.type!r}"))
        return found
    value = item.get("value")
    if not is_mapping(value):
        return [*found, ("bad-value", "'value' must be a dict")]
    if "score" in item and not _finite(item["score"]):
        found.append(("bad-score", f"score must be a finite number, got {item['score']!r}"))
    found += _check_labels(control, value, where)
    obj = config.get_object(to_name) if isinstance(to_name, str) else None
    base = control.type.removesuffix("labels")
    if base in _IMAGE_TYPES and (obj is None or obj.type == "image"):
        found += _check_image(base, item, value)
    found += _check_value(control, value, where, obj.type if obj else None)
    return found


def _check_labels(control: ControlTag, value: Mapping[str, Any], where: str) -> Found:
    key = control.type
    if not (key.endswith("labels") or key in ("choices", "taxonomy")):
        return []
    labels = value.get(key)
    if key == "taxonomy":
        if not isinstance(labels, list) or not all(_strings(p) and p for p in labels):
            return [("bad-value", "value.taxonomy must be a list of paths (lists of strings)")]
        if control.dynamic_labels or control.attrs.get("apiUrl"):
            return []
        return [
            ("unknown-label", f"{' / '.join(p)} is not a path of {where}")
            for p in labels
            if not _in_taxonomy(control.labels, p)
        ]
    if not _strings(labels):
        return [("bad-value", f"value.{key} must be a list of label strings")]
    found: Found = []
    if key == "choices" and not control.multiple and len(labels) > 1:
        found.append(("bad-value", f"{where} allows one choice, got {len(labels)}"))
    if not control.dynamic_labels:
        known = control.label_set
        for label in labels:
            if label not in known:
                found.append(
                    (
                        "unknown-label",
                        f"label {label!r} is not in {where} "
                        f"(labels: {', '.join(control.label_names) or 'none'})",
                    )
                )
    return found


def _in_taxonomy(level: tuple[Label, ...], path: list[str]) -> bool:
    for name in path:
        node = next((label for label in level if label.name == name), None)
        if node is None:
            return False
        level = node.children
    return True


def _check_image(base: str, item: Mapping[str, Any], value: Mapping[str, Any]) -> Found:
    found: Found = []
    size = (item.get("original_width"), item.get("original_height"))
    if not all(_finite(v) and v > 0 for v in size):
        found.append(
            (
                "missing-original-size",
                "original_width and original_height (the image size in pixels) are missing "
                "or not positive; the editor needs them to place the region",
            )
        )
    if base == "brush":
        return found + _check_brush(value, size)
    names: tuple[str, ...] = {
        "rectangle": ("x", "y", "width", "height"),
        "keypoint": ("x", "y"),
        "ellipse": ("x", "y", "radiusX", "radiusY"),
        "polygon": (),
    }[base]
    coords: dict[str, Any] = {name: value.get(name) for name in names}
    if base == "polygon":
        points = value.get("points")
        if not isinstance(points, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in points
        ):
            return [*found, ("bad-value", "value.points must be a list of [x, y] pairs")]
        coords = {f"points[{i}][{j}]": p[j] for i, p in enumerate(points) for j in (0, 1)}
    for name, number in coords.items():
        if not _finite(number):
            found.append(("bad-value", f"value.{name} must be a number, got {number!r}"))
        elif not -_EPS <= number <= 100 + _EPS:
            found.append(("out-of-range", f"value.{name} = {number} is outside 0-100 (percent)"))
    unrotated = base == "rectangle" and not value.get("rotation")
    if unrotated and all(_finite(v) for v in coords.values()):
        for start, extent in (("x", "width"), ("y", "height")):
            end = coords[start] + coords[extent]
            if end > 100 + _EPS:
                found.append(
                    ("out-of-range", f"value.{start} + value.{extent} = {end} goes past 100")
                )
    return found


def _check_brush(value: Mapping[str, Any], size: tuple[Any, Any]) -> Found:
    if value.get("format") != "rle":
        return [("bad-value", f"value.format must be 'rle', got {value.get('format')!r}")]
    data = value.get("rle")
    if not isinstance(data, list) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in data
    ):
        return [("bad-value", "value.rle must be a list of integers from 0 to 255")]
    try:
        count = rle.rle_length(data)
    except rle.RLEError:
        return [("bad-value", "value.rle is too short to be an RLE stream")]
    width, height = size
    if _finite(width) and _finite(height) and count != width * height * 4:
        return [
            (
                "bad-value",
                f"value.rle holds {count} values, but a {width}x{height} image needs "
                f"{width * height * 4} (4 per pixel)",
            )
        ]
    return []


def _check_value(
    control: ControlTag, value: Mapping[str, Any], where: str, object_type: str | None
) -> Found:
    kind = control.type
    if kind == "textarea":
        text = value.get("text")
        if not (isinstance(text, str) or _strings(text)):
            return [("bad-value", "value.text must be a list of strings")]
    elif kind == "number":
        number = value.get("number")
        if not _finite(number):
            return [("bad-value", f"value.number must be a finite number, got {number!r}")]
        low, high = _attr(control, "min"), _attr(control, "max")
        if (low is not None and number < low) or (high is not None and number > high):
            return [("out-of-range", f"{number} is outside {where}'s min/max ({low}, {high})")]
    elif kind == "rating":
        rating = value.get("rating")
        top = _attr(control, "maxRating") or 5
        number = plain_number(rating)
        if not (isinstance(number, int) and 0 <= number <= top):
            return [("bad-value", f"value.rating must be an integer 0..{top:g}, got {rating!r}")]
    elif kind == "datetime" and not isinstance(value.get("datetime"), str):
        return [("bad-value", "value.datetime must be a string")]
    elif (
        kind in _SPAN_TYPES
        and object_type not in ("image", "video")
        and not ("start" in value and "end" in value)
    ):
        return [("bad-value", "a span needs value.start and value.end")]
    return []


def _check_relation(config: LabelConfig, item: Mapping[str, Any], ids: set[str]) -> Found:
    found: Found = []
    for key in ("from_id", "to_id"):
        if not (_is_id(item.get(key)) and item[key] in ids):
            found.append(("bad-relation", f"{key} {item.get(key)!r} is not the id of an item"))
    labels = item.get("labels", [])
    if not _strings(labels):
        return [*found, ("bad-relation", "a relation's labels must be a list of strings")]
    known = {label.name for label in config.relation_labels}
    for label in labels:
        if label not in known:
            found.append(("unknown-label", f"relation label {label!r} is not in <Relations>"))
    return found


def _is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str)


def _finite(value: Any) -> TypeGuard[float]:
    """A finite real number: int, float, a NumPy scalar, ... (relaxml sends them as numbers)."""
    return real_number(value) is not None


def _strings(value: Any) -> TypeGuard[list[str]]:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _attr(control: ControlTag, name: str) -> float | None:
    try:
        return float(control.attrs[name])
    except (KeyError, ValueError):
        return None
