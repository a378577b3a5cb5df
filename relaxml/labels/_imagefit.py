"""Fitting image regions into the image: what a builder refuses, and what it clips.

A region may stick out of the image by `TOLERANCE` (the rounding of detectors): that much is
clipped off, so Label Studio's validator, which refuses coordinates above 100 (and radii above
50), takes the region; beyond it the builder refuses the region, saying where it went.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ._resultbase import ResultError
from .geometry import BoxFormat, GeometryError, Unit, box_to_percent

__all__ = ["TOLERANCE", "clip", "clip_box", "extent", "inside", "show", "slack_percent"]

TOLERANCE = 0.01
"""How far a region may stick out of the image (a fraction of its side, and at least 1 px): the
rounding of detectors, clipped off; beyond it the region is refused."""


def fit_box(
    box: Sequence[float],
    size: tuple[int, int],
    format: BoxFormat,
    unit: Unit,
    rotation: float,
) -> dict[str, float]:
    """`box` in percent of `size` (`geometry.box_to_percent`), refused when it lies outside
    beyond the rounding tolerance (`inside`) and clipped to it otherwise (`clip_box`): what
    `rectangle`, `video_rectangle` and `ocr_region` write."""
    try:
        value = box_to_percent(box, size, format=format, unit=unit, rotation=rotation)
    except GeometryError as error:
        raise ResultError(str(error)) from None
    inside(f"the {format} box", box, extent(value, size), size, unit)
    return clip_box(value, size)


def slack_percent(image_size: Sequence[float]) -> tuple[float, float]:
    """`TOLERANCE` in percent of the image's width and height."""
    width, height = float(image_size[0]), float(image_size[1])
    return max(1.0, TOLERANCE * width) / width * 100, max(1.0, TOLERANCE * height) / height * 100


def clip(percent: float) -> float:
    """A coordinate in 0-100, unchanged when it already is."""
    return 0.0 if percent < 0 else 100.0 if percent > 100 else percent


def clip_box(value: dict[str, float], image_size: Sequence[float]) -> dict[str, float]:
    """A box checked by `inside`, its rounding past the image's edges clipped off.

    A turned box keeps its corner (it may rightly cross an edge) but no value above 100, which
    Label Studio refuses; an upright box is cut to the image.
    """
    if value["rotation"]:
        for key, slack in zip(
            ("x", "y", "width", "height"), slack_percent(image_size) * 2, strict=True
        ):
            if value[key] > 100 + slack:
                raise ResultError(
                    f"the turned box's {key} would be {value[key]:g}% of the image; Label "
                    "Studio allows at most 100%"
                )
            value[key] = min(value[key], 100.0)
        return value
    for start, side in (("x", "width"), ("y", "height")):
        if value[start] < 0:
            value[side] = max(0.0, value[side] + value[start])
            value[start] = 0.0
        if value[start] + value[side] > 100:
            value[start] = min(value[start], 100.0)
            value[side] = 100 - value[start]
    return value


def extent(value: dict[str, float], image_size: Sequence[float]) -> list[tuple[float, float]]:
    """The points of a rectangle (in percent) that must lie in the image: its two corners, or
    for a turned box its centre (a turned box may rightly cross the image's edge)."""
    x, y, w, h = value["x"], value["y"], value["width"], value["height"]
    theta = math.radians(value.get("rotation", 0.0))
    if not theta:
        return [(x, y), (x + w, y + h)]
    width, height = float(image_size[0]), float(image_size[1])
    w_px, h_px = w / 100 * width, h / 100 * height
    cos, sin = math.cos(theta), math.sin(theta)  # clockwise about the top-left corner, in px
    cx = x + (w_px / 2 * cos - h_px / 2 * sin) / width * 100
    cy = y + (w_px / 2 * sin + h_px / 2 * cos) / height * 100
    return [(cx, cy)]


def inside(
    what: str,
    given: object,
    points: Sequence[Sequence[float]],
    image_size: Sequence[float],
    unit: Unit,
) -> None:
    """Refuse a region whose `points` (in percent) fall outside the image, beyond `TOLERANCE`.

    In pixels, when the points would fit an image of size (height, width), say so: that is the
    usual mistake (NumPy and PIL disagree on the order).
    """
    width, height = float(image_size[0]), float(image_size[1])
    pixels = [(x / 100 * width, y / 100 * height) for x, y in points]
    if _fits(pixels, width, height):
        return
    xs, ys = [x for x, _ in pixels], [y for _, y in pixels]
    where = (
        f"is at x {xs[0]:g}, y {ys[0]:g}"
        if len(pixels) == 1
        else f"spans x {min(xs):g} to {max(xs):g} and y {min(ys):g} to {max(ys):g}"
    )
    message = (
        f"{what} {show(given)} goes outside the image: it {where} pixels, but image_size "
        f"is a {width:g}x{height:g} (width x height) image"
    )
    if unit == "px" and _fits(pixels, height, width):
        message += "; image_size is (width, height): did you pass (height, width)?"
    raise ResultError(message)


def _fits(pixels: Sequence[tuple[float, float]], width: float, height: float) -> bool:
    slack_x, slack_y = max(1.0, TOLERANCE * width), max(1.0, TOLERANCE * height)
    return all(
        -slack_x <= x <= width + slack_x and -slack_y <= y <= height + slack_y for x, y in pixels
    )


def show(given: object) -> str:
    """The coordinates as the model gave them, in plain numbers (NumPy arrays included)."""
    tolist = getattr(given, "tolist", None)
    shown = tolist() if callable(tolist) else given
    if isinstance(shown, (list, tuple)):
        shown = [list(p) if isinstance(p, (list, tuple)) else p for p in shown]
    text = repr(shown)
    return text if len(text) <= 120 else text[:119] + "…"
