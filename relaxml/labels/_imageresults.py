"""Builders for image regions: rectangles, polygons, keypoints, ellipses and brush masks.

Every method takes the model's coordinates (pixels by default, see `relaxml.labels.geometry`)
and the image's size, and writes Label Studio's percentages plus `original_width` and
`original_height`, which the editor uses as the image's natural size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from . import rle as rle_codec
from ._resultbase import Item, LabelArg, ResultBuilderBase, ResultError
from .geometry import (
    BoxFormat,
    GeometryError,
    Unit,
    box_to_percent,
    ellipse_to_percent,
    point_to_percent,
)
from .tags import ControlTag

__all__ = ["ImageResults"]

TOLERANCE = 0.01
"""How far a region may stick out of the image (a fraction of its side, and at least 1 px): the
rounding of detectors; beyond it the region is refused."""


class ImageResults(ResultBuilderBase):
    """Image region builders; part of `ResultBuilder`."""

    def _image_region(
        self,
        kind: str,
        label: LabelArg,
        value: dict[str, Any],
        image_size: tuple[int, int],
        from_name: str | None,
        to_name: str | None,
        score: float | None,
        id: str | None,
    ) -> Item:
        labels = self._label_list(label)
        control = self._control((f"{kind}labels", kind), from_name, labels)
        target = self._to_name(control, to_name)
        if self._object_type(target) not in ("image", None):
            raise ResultError(f"{control.tag} {control.name!r} labels {target!r}, not an Image")
        self._put_labels(control, labels, value)
        extra = {
            "original_width": int(image_size[0]),
            "original_height": int(image_size[1]),
            "image_rotation": 0,
        }
        return self._add(control, target, value, score=score, id=id, extra=extra)

    def _put_labels(self, control: ControlTag, labels: list[str], value: dict[str, Any]) -> None:
        if control.type.endswith("labels"):
            if not labels:
                raise ResultError(f"{control.tag} {control.name!r} needs a label")
            value[control.type] = self._map_labels(control, labels)
        elif labels:
            raise ResultError(
                f"{control.tag} {control.name!r} has no labels; pass label=None or use a "
                f"{control.tag}Labels control"
            )

    def rectangle(
        self,
        box: Sequence[float],
        label: LabelArg = None,
        *,
        image_size: tuple[int, int],
        format: BoxFormat = "xyxy",
        unit: Unit = "px",
        rotation: float = 0.0,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `RectangleLabels` (or `Rectangle`) region from a box; see `geometry.box_to_percent`.

        `box` is `(x0, y0, x1, y1)` for `format="xyxy"`, `(x, y, w, h)` for `"xywh"`, `(cx, cy,
        w, h)` for `"cxcywh"`; `image_size` is `(width, height)` in pixels.
        """
        value = _geometry(
            lambda: box_to_percent(box, image_size, format=format, unit=unit, rotation=rotation)
        )
        _inside(f"the {format} box", box, _extent(value, image_size), image_size, unit)
        return self._image_region(
            "rectangle", label, value, image_size, from_name, to_name, score, id
        )

    def polygon(
        self,
        points: Sequence[Sequence[float]],
        label: LabelArg = None,
        *,
        image_size: tuple[int, int],
        unit: Unit = "px",
        closed: bool = True,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `PolygonLabels` (or `Polygon`) region from its vertices `[(x, y), ...]`."""
        if len(points) < 3:
            raise ResultError(f"a polygon needs at least 3 points, got {len(points)}")
        converted = _geometry(
            lambda: [list(point_to_percent(p, image_size, unit=unit)) for p in points]
        )
        _inside("the polygon", points, [(x, y) for x, y in converted], image_size, unit)
        value: dict[str, Any] = {"points": converted, "closed": bool(closed)}
        return self._image_region(
            "polygon", label, value, image_size, from_name, to_name, score, id
        )

    def keypoint(
        self,
        point: Sequence[float],
        label: LabelArg = None,
        *,
        image_size: tuple[int, int],
        unit: Unit = "px",
        width: float | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `KeyPointLabels` (or `KeyPoint`) region at `point` = (x, y).

        `width` is the drawn point's size in percent of the image width (the editor's default
        when omitted).
        """
        x, y = _geometry(lambda: point_to_percent(point, image_size, unit=unit))
        _inside("the keypoint", point, [(x, y)], image_size, unit)
        value: dict[str, Any] = {"x": x, "y": y}
        if width is not None:
            value["width"] = float(width)
        return self._image_region(
            "keypoint", label, value, image_size, from_name, to_name, score, id
        )

    def ellipse(
        self,
        center: Sequence[float],
        radii: Sequence[float],
        label: LabelArg = None,
        *,
        image_size: tuple[int, int],
        unit: Unit = "px",
        rotation: float = 0.0,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """An `EllipseLabels` (or `Ellipse`) region: centre (x, y), radii (rx, ry), rotation."""
        value = _geometry(
            lambda: ellipse_to_percent(center, radii, image_size, unit=unit, rotation=rotation)
        )
        _inside("the ellipse's centre", center, [(value["x"], value["y"])], image_size, unit)
        return self._image_region(
            "ellipse", label, value, image_size, from_name, to_name, score, id
        )

    def brush(
        self,
        mask: Any,
        label: LabelArg = None,
        *,
        image_size: tuple[int, int] | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `BrushLabels` (or `Brush`) region from a 2-D mask (NumPy array or nested lists).

        Nonzero pixels are the region (threshold a probability map first: `probs > 0.5`). The
        mask must have the image's size; `image_size`, if given, is checked against it.
        """
        binary = _binarize(mask)
        height = len(binary)
        width = len(binary[0]) if height else 0
        if not width or not height:
            raise ResultError("a brush mask must have at least one row and one column")
        if image_size is not None and tuple(image_size) != (width, height):
            raise ResultError(
                f"the mask is {width}x{height} pixels but image_size is "
                f"{image_size[0]}x{image_size[1]}: masks must have the image's size"
            )
        value: dict[str, Any] = {"format": "rle", "rle": rle_codec.mask_to_rle(binary)}
        return self._image_region(
            "brush", label, value, (width, height), from_name, to_name, score, id
        )


def _geometry(convert: Any) -> Any:
    try:
        return convert()
    except GeometryError as error:
        raise ResultError(str(error)) from None


def _extent(value: dict[str, float], image_size: Sequence[float]) -> list[tuple[float, float]]:
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


def _inside(
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
        f"{what} {_show(given)} goes outside the image: it {where} pixels, but image_size "
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


def _show(given: object) -> str:
    """The coordinates as the model gave them, in plain numbers (NumPy arrays included)."""
    tolist = getattr(given, "tolist", None)
    shown = tolist() if callable(tolist) else given
    if isinstance(shown, (list, tuple)):
        shown = [list(p) if isinstance(p, (list, tuple)) else p for p in shown]
    text = repr(shown)
    return text if len(text) <= 120 else text[:119] + "…"


def _binarize(mask: Any) -> Any:
    """0/255 uint8 for a NumPy mask (nonzero → 255), 0/255 rows for nested lists."""
    if type(mask).__module__ == "numpy" and hasattr(mask, "ndim"):
        if mask.ndim != 2:
            raise ResultError(f"a brush mask must be 2-D (height, width), got shape {mask.shape}")
        return (mask != 0).astype("uint8") * 255
    rows = [[255 if v else 0 for v in row] for row in mask]
    if len({len(row) for row in rows}) > 1:
        raise ResultError("a brush mask's rows must all have the same length")
    return rows
