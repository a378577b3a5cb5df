"""Coordinate conversions between a model's pixels and Label Studio's percentages.

Label Studio stores image regions in percent of the image: `x` and `width` of its width, `y` and
`height` of its height, with (0, 0) the top-left corner. A rectangle's (`x`, `y`) is its top-left
corner before rotation, and `rotation` turns it clockwise, in degrees, about that corner. See
docs/coordinates.md.

Every function takes `image_size` as (width, height) in pixels, and `unit`: `"px"` (pixels,
the default), `"percent"` (already 0-100) or `"fraction"` (0-1, as YOLO writes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "BoxFormat",
    "Unit",
    "box_to_percent",
    "ellipse_to_percent",
    "percent_to_box",
    "point_to_percent",
]

Unit = Literal["px", "percent", "fraction"]
"""How input coordinates are expressed."""

BoxFormat = Literal["xyxy", "xywh", "cxcywh"]
"""`xyxy`: two corners; `xywh`: top-left corner and size; `cxcywh`: centre and size."""

_UNITS = ("px", "percent", "fraction")
_FORMATS = ("xyxy", "xywh", "cxcywh")


class GeometryError(ValueError):
    """Coordinates that cannot be converted: wrong arity, non-finite, or a bad image size."""


def _size(image_size: Sequence[float]) -> tuple[float, float]:
    if len(image_size) != 2:
        raise GeometryError(f"image_size must be (width, height), got {image_size!r}")
    width, height = (float(v) for v in image_size)
    if not (math.isfinite(width) and math.isfinite(height) and width > 0 and height > 0):
        raise GeometryError(f"image_size must be two positive numbers, got {image_size!r}")
    return width, height


def _numbers(values: Sequence[float], count: int, what: str) -> list[float]:
    if len(values) != count:
        raise GeometryError(f"{what} needs {count} numbers, got {len(values)}: {values!r}")
    out = [float(v) for v in values]
    if not all(math.isfinite(v) for v in out):
        raise GeometryError(f"{what} has a non-finite number: {values!r}")
    return out


def _scale(unit: Unit, width: float, height: float) -> tuple[float, float]:
    """Factors from `unit` to pixels, along x and along y."""
    if unit == "px":
        return 1.0, 1.0
    if unit == "percent":
        return width / 100, height / 100
    if unit == "fraction":
        return width, height
    raise GeometryError(f"unit must be one of {', '.join(_UNITS)}, got {unit!r}")


def _angle(rotation: float) -> float:
    """`rotation` in [0, 360): Python's `%` gives 360.0 for tiny negative angles."""
    try:
        rotation = float(rotation)  # a NumPy scalar stays one through `%`
    except (TypeError, ValueError):
        raise GeometryError(f"rotation must be a number, got {rotation!r}") from None
    if not math.isfinite(rotation):
        raise GeometryError(f"rotation must be finite, got {rotation!r}")
    turned = rotation % 360
    return 0.0 if turned >= 360 else turned


def box_to_percent(
    box: Sequence[float],
    image_size: Sequence[float],
    *,
    format: BoxFormat = "xyxy",
    unit: Unit = "px",
    rotation: float = 0.0,
) -> dict[str, float]:
    """A box as Label Studio's `{"x", "y", "width", "height", "rotation"}` in percent.

    With `rotation` (degrees, clockwise), an `xyxy` or `xywh` box turns about its top-left
    corner, as in Label Studio; a `cxcywh` box turns about its centre (the usual convention of
    oriented detectors), and is converted to Label Studio's corner form.
    """
    if format not in _FORMATS:
        raise GeometryError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
    width, height = _size(image_size)
    sx, sy = _scale(unit, width, height)
    a, b, c, d = _numbers(box, 4, f"a {format} box")
    angle = _angle(rotation)
    if format == "xyxy":
        x, y, w, h = a * sx, b * sy, (c - a) * sx, (d - b) * sy
    elif format == "xywh":
        x, y, w, h = a * sx, b * sy, c * sx, d * sy
    else:
        w, h = c * sx, d * sy
        theta = math.radians(rotation)
        cos, sin = math.cos(theta), math.sin(theta)
        x = a * sx - w / 2 * cos + h / 2 * sin
        y = b * sy - w / 2 * sin - h / 2 * cos
    if w < 0 or h < 0:
        raise GeometryError(f"a {format} box has a negative width or height: {box!r}")
    return {
        "x": x / width * 100,
        "y": y / height * 100,
        "width": w / width * 100,
        "height": h / height * 100,
        "rotation": angle,
    }


def percent_to_box(
    value: dict[str, float], image_size: Sequence[float], *, format: BoxFormat = "xyxy"
) -> tuple[float, float, float, float]:
    """The inverse of `box_to_percent`: the box in pixels, in `format`.

    `xyxy` and `xywh` give the corners before rotation (Label Studio turns about the top-left
    corner); `cxcywh` gives the true centre of a rotated box.
    """
    if format not in _FORMATS:
        raise GeometryError(f"format must be one of {', '.join(_FORMATS)}, got {format!r}")
    width, height = _size(image_size)
    x, y = value["x"] / 100 * width, value["y"] / 100 * height
    w, h = value["width"] / 100 * width, value["height"] / 100 * height
    if format == "xyxy":
        return x, y, x + w, y + h
    if format == "xywh":
        return x, y, w, h
    theta = math.radians(value.get("rotation", 0.0))
    cos, sin = math.cos(theta), math.sin(theta)
    return x + w / 2 * cos - h / 2 * sin, y + w / 2 * sin + h / 2 * cos, w, h


def point_to_percent(
    point: Sequence[float], image_size: Sequence[float], *, unit: Unit = "px"
) -> tuple[float, float]:
    """A point (x, y) in `unit` as (x%, y%) of the image."""
    width, height = _size(image_size)
    sx, sy = _scale(unit, width, height)
    x, y = _numbers(point, 2, "a point")
    return x * sx / width * 100, y * sy / height * 100


def ellipse_to_percent(
    center: Sequence[float],
    radii: Sequence[float],
    image_size: Sequence[float],
    *,
    unit: Unit = "px",
    rotation: float = 0.0,
) -> dict[str, float]:
    """An ellipse as Label Studio's `{"x", "y", "radiusX", "radiusY", "rotation"}`.

    `x`, `y` is the centre; `radiusX` is in percent of the image width, `radiusY` of its height.
    """
    width, height = _size(image_size)
    sx, sy = _scale(unit, width, height)
    cx, cy = _numbers(center, 2, "an ellipse centre")
    rx, ry = _numbers(radii, 2, "an ellipse's radii")
    if rx < 0 or ry < 0:
        raise GeometryError(f"an ellipse's radii must not be negative: {radii!r}")
    angle = _angle(rotation)
    return {
        "x": cx * sx / width * 100,
        "y": cy * sy / height * 100,
        "radiusX": rx * sx / width * 100,
        "radiusY": ry * sy / height * 100,
        "rotation": angle,
    }
