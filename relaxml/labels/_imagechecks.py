"""The checks of `check_prediction` for image regions: rectangles, polygons, keypoints, ellipses
and brush masks, in Label Studio's percentages.

Besides what the editor needs (coordinates within 0-100, the image's size in pixels, an RLE of
the right length), these hold Label Studio's own validator's limits: a rotation of at most 360
degrees, an ellipse radius of at most 50 (percent of the image's side).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from . import rle
from ._valuechecks import EPS, Found, finite

__all__ = ["IMAGE_TYPES", "check_image"]

IMAGE_TYPES = ("rectangle", "polygon", "keypoint", "ellipse", "brush")
"""The image region types (`rectanglelabels` is a `rectangle` with labels)."""

_COORDINATES: dict[str, tuple[str, ...]] = {
    "rectangle": ("x", "y", "width", "height"),
    "keypoint": ("x", "y"),
    "ellipse": ("x", "y", "radiusX", "radiusY"),
    "polygon": (),
}


def check_image(
    base: str, item: Mapping[str, Any], value: Mapping[str, Any], *, sized: bool = True
) -> Found:
    """Problems of an image region of type `base` (one of `IMAGE_TYPES`).

    `sized=False` skips the image size (`original_width`, `original_height`): a `Labels` item
    that names its region's geometry in the split format needs no size of its own.
    """
    found: Found = []
    size = (item.get("original_width"), item.get("original_height"))
    if sized and not all(finite(v) and v > 0 for v in size):
        found.append(
            (
                "missing-original-size",
                "original_width and original_height (the image size in pixels) are missing "
                "or not positive; the editor needs them to place the region",
            )
        )
    if base == "brush":
        return found + _check_brush(value, size)
    coords: dict[str, Any] = {name: value.get(name) for name in _COORDINATES[base]}
    if base == "polygon":
        points = value.get("points")
        if not isinstance(points, list) or not all(
            isinstance(p, (list, tuple)) and len(p) == 2 for p in points
        ):
            return [*found, ("bad-value", "value.points must be a list of [x, y] pairs")]
        coords = {f"points[{i}][{j}]": p[j] for i, p in enumerate(points) for j in (0, 1)}
    rotation = value.get("rotation")
    turned = base == "rectangle" and finite(rotation) and rotation % 360 != 0
    for name, number in coords.items():
        # A turned box's corner (x, y) may lie left of or above the image, as Label Studio allows
        low = -math.inf if turned and name in ("x", "y") else -EPS
        if not finite(number):
            found.append(("bad-value", f"value.{name} must be a number, got {number!r}"))
        elif not low <= number <= 100:
            found.append(("out-of-range", f"value.{name} = {number} is outside 0-100 (percent)"))
        elif name.startswith("radius") and number > 50:
            found.append(
                ("out-of-range", f"value.{name} = {number} is over 50 (percent of the image)")
            )
    if base in ("rectangle", "ellipse"):
        found += _check_rotation(value.get("rotation"))
    unrotated = base == "rectangle" and not value.get("rotation")
    if unrotated and all(finite(v) for v in coords.values()):
        for start, extent in (("x", "width"), ("y", "height")):
            end = coords[start] + coords[extent]
            if end > 100 + EPS:
                found.append(
                    ("out-of-range", f"value.{start} + value.{extent} = {end} goes past 100")
                )
    return found


def _check_rotation(rotation: Any) -> Found:
    if rotation is None:
        return []
    if not finite(rotation):
        return [("bad-value", f"value.rotation must be a number (degrees), got {rotation!r}")]
    if rotation > 360:
        return [("out-of-range", f"value.rotation = {rotation} is over 360 (degrees)")]
    return []


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
    if finite(width) and finite(height) and count != width * height * 4:
        return [
            (
                "bad-value",
                f"value.rle holds {count} values, but a {width}x{height} image needs "
                f"{width * height * 4} (4 per pixel)",
            )
        ]
    return []
