"""How one item of an interactive call's `params.context.result` reads: the fields of a
`relaxml.labels.prompts.Prompt`, geometry converted to pixels, or why it does not read."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

PromptKind = Literal["point", "box", "brush", "ellipse", "polygon", "text", "span"]
"""What was drawn: a keypoint, a rectangle, a brush stroke, an ellipse, a polygon, text, or a
span of a Text selected with a Labels control."""

_TOOLS: dict[str, PromptKind] = {
    "keypoint": "point",
    "rectangle": "box",
    "brush": "brush",
    "ellipse": "ellipse",
    "polygon": "polygon",
}
KINDS: dict[str, PromptKind] = {
    **_TOOLS,
    **{f"{tool}labels": kind for tool, kind in _TOOLS.items()},
    "textarea": "text",
    "labels": "span",
}


class Unreadable(ValueError):
    """Why one item is not a prompt."""


def read_item(item: object, negative: Callable[[str, str], bool]) -> dict[str, Any]:
    """The fields of the `Prompt` an item of `params.context.result` is; `negative(from_name,
    label)` says whether the config marks a label negative. Raises `Unreadable`."""
    if not isinstance(item, Mapping):
        raise Unreadable(f"an item is {type(item).__name__}, not an object")
    kind_name = item.get("type")
    kind = KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise Unreadable(f"type {kind_name!r} is not a prompt type")
    from_name, to_name = item.get("from_name"), item.get("to_name")
    if not isinstance(from_name, str) or not isinstance(to_name, str):
        raise Unreadable("from_name and to_name must be strings")
    value = item.get("value")
    if not isinstance(value, Mapping):
        raise Unreadable("value must be an object")
    labels = _labels(value, str(kind_name))
    label = labels[0] if labels else None
    positive = item.get("is_positive", True) is not False
    if positive and label is not None:
        positive = not negative(from_name, label)
    common: dict[str, Any] = {"kind": kind, "positive": positive, "label": label}
    common.update(labels=labels, from_name=from_name, to_name=to_name, raw=item)
    if kind == "text":
        texts = value.get("text")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise Unreadable("a text prompt's value.text must be a list of strings")
        return {**common, "texts": tuple(texts)}
    if kind == "span":
        start, end = value.get("start"), value.get("end")
        if type(start) is not int or type(end) is not int or not 0 <= start <= end:
            raise Unreadable(
                f"a span prompt needs integer offsets 0 <= start <= end, got {start!r:.30} "
                f"and {end!r:.30}"
            )
        selected = value.get("text")
        return {
            **common,
            "span": (start, end),
            "texts": (selected,) if isinstance(selected, str) else (),
        }
    width, height = _size(item)
    common["image_size"] = (width, height)
    sx, sy = width / 100, height / 100
    if kind == "point":
        return {**common, "point": (_num(value, "x") * sx, _num(value, "y") * sy)}
    if kind == "box":
        x, y = _num(value, "x") * sx, _num(value, "y") * sy
        w, h = _num(value, "width") * sx, _num(value, "height") * sy
        rotation = _num(value, "rotation", 0.0)
        return {**common, "box": (x, y, x + w, y + h), "rotation": rotation}
    if kind == "ellipse":
        centre = (_num(value, "x") * sx, _num(value, "y") * sy)
        radii = (_num(value, "radiusX") * sx, _num(value, "radiusY") * sy)
        rotation = _num(value, "rotation", 0.0)
        return {**common, "point": centre, "radii": radii, "rotation": rotation}
    if kind == "polygon":
        return {**common, "points": _vertices(value.get("points"), sx, sy)}
    rle = value.get("rle")
    if not isinstance(rle, list) or not all(type(b) is int and 0 <= b < 256 for b in rle):
        raise Unreadable("a brush prompt's value.rle must be a list of bytes")
    return {**common, "rle": tuple(rle)}


def _labels(value: Mapping[str, Any], type_name: str) -> tuple[str, ...]:
    for key in (type_name, "labels"):
        found = value.get(key)
        if isinstance(found, list) and found and all(isinstance(v, str) for v in found):
            return tuple(found)
    return ()


def _size(item: Mapping[str, Any]) -> tuple[int, int]:
    width = _number(item.get("original_width"))
    height = _number(item.get("original_height"))
    if width is None or height is None or width < 1 or height < 1:
        raise Unreadable(
            "original_width and original_height must be positive numbers, got "
            f"{item.get('original_width')!r:.50} and {item.get('original_height')!r:.50}"
        )
    return int(width), int(height)


def _number(value: object) -> float | None:
    """`value` as a finite float, or None (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _num(value: Mapping[str, Any], key: str, default: float | None = None) -> float:
    number = _number(value.get(key, default))
    if number is None:
        raise Unreadable(f"value.{key} must be a finite number, got {value.get(key)!r:.50}")
    return number


def _vertices(points: object, sx: float, sy: float) -> tuple[tuple[float, float], ...]:
    if not isinstance(points, list) or not points:
        raise Unreadable("a polygon prompt's value.points must be a non-empty list")
    out: list[tuple[float, float]] = []
    for point in points:
        if not isinstance(point, list) or len(point) != 2:
            raise Unreadable("each polygon point must be [x, y]")
        x, y = _number(point[0]), _number(point[1])
        if x is None or y is None:
            raise Unreadable(f"a polygon point must be two finite numbers, got {point!r:.50}")
        out.append((x * sx, y * sy))
    return tuple(out)
