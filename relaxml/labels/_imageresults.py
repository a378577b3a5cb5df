"""Builders for image regions: rectangles, polygons, keypoints, ellipses and brush masks.

Every method takes the model's coordinates (pixels by default, see `relaxml.labels.geometry`)
and the image's size, and writes Label Studio's percentages plus `original_width` and
`original_height`, which the editor uses as the image's natural size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from . import rle as rle_codec
from ._imagefit import clip, fit_box, inside, show, slack_percent
from ._resultbase import Item, LabelArg, ResultBuilderBase, ResultError
from .geometry import (
    BoxFormat,
    GeometryError,
    Unit,
    ellipse_to_percent,
    point_to_percent,
)
from .tags import ControlTag

__all__ = ["ImageResults"]


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
        named = self.config.control(from_name) if from_name is not None else None
        if named is not None and named.type == "labels":
            control = self._tool_for(kind, named)
        else:
            control = self._control((f"{kind}labels", kind), from_name, labels)
        target = self._to_name(control, to_name)
        if self._object_type(target) not in ("image", None):
            raise ResultError(f"{control.tag} {control.name!r} labels {target!r}, not an Image")
        if control.type == kind and labels:
            control = self._merged(kind, target, labels, named) or control
        self._put_labels(control, labels, value)
        extra = {
            "original_width": int(image_size[0]),
            "original_height": int(image_size[1]),
            "image_rotation": 0,
        }
        return self._add(control, target, value, score=score, id=id, extra=extra)

    def _tool_for(self, kind: str, labels: ControlTag) -> ControlTag:
        """The bare tool (`Rectangle`, ...) drawing on the object of a `Labels` control."""
        for control in self.config.controls_of_type(kind):
            if set(control.to_names) & set(labels.to_names):
                return control
        raise ResultError(
            f"{labels.tag} {labels.name!r} (line {labels.line}) is a Labels control, and no "
            f"<{kind.capitalize()}> tool draws on its image to combine it with"
        )

    def _merged(
        self, kind: str, target: str, labels: list[str], named: ControlTag | None
    ) -> ControlTag | None:
        """`Labels` on an image with a bare tool: the `Labels` control knowing `labels`, as it
        writes a region of that tool (type `<tool>labels`, Label Studio's merged format)."""
        choices = [named] if named is not None else self.config.controls_for(target)
        for control in choices:
            if control.type == "labels" and all(self._knows(control, n) for n in labels):
                return replace(control, result_type=f"{kind}labels")
        if named is not None:
            self._map_labels(named, labels)  # raises, naming the labels it has
        return None

    def _put_labels(self, control: ControlTag, labels: list[str], value: dict[str, Any]) -> None:
        if control.type.endswith("labels"):
            if not labels:
                raise ResultError(f"{control.tag} {control.name!r} needs a label")
            value[control.type] = self._map_labels(control, labels)
        elif labels:
            raise ResultError(
                f"{control.tag} {control.name!r} has no labels, and no <Labels> on its image "
                f"has {labels}; pass label=None, or use a {control.tag}Labels or a Labels control"
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
        value = fit_box(box, image_size, format, unit, rotation)
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
        inside("the polygon", points, [(x, y) for x, y in converted], image_size, unit)
        converted = [[clip(x), clip(y)] for x, y in converted]
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
        inside("the keypoint", point, [(x, y)], image_size, unit)
        value: dict[str, Any] = {"x": clip(x), "y": clip(y)}
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
        """An `EllipseLabels` (or `Ellipse`) region: centre (x, y), radii (rx, ry), rotation.

        A radius may be at most half the image's side (Label Studio refuses more); a little more,
        within `TOLERANCE`, is clipped to half.
        """
        value = _geometry(
            lambda: ellipse_to_percent(center, radii, image_size, unit=unit, rotation=rotation)
        )
        inside("the ellipse's centre", center, [(value["x"], value["y"])], image_size, unit)
        value["x"], value["y"] = clip(value["x"]), clip(value["y"])
        for key, slack in zip(("radiusX", "radiusY"), slack_percent(image_size), strict=True):
            if value[key] > 50 + slack:
                raise ResultError(
                    f"radii {show(radii)} are too large: {key} would be {value[key]:g}% of the "
                    "image, and Label Studio allows at most 50% (half the image's side)"
                )
            value[key] = min(value[key], 50.0)
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
