"""`ResultBuilder`: build a prediction's `result` items from a labeling config.

One builder per prediction. Each method adds one item (and returns it): `from_name`, `to_name`
and `type` come from the config, labels are checked and mapped from model class names, regions
get stable ids, and per-region items (`region=`) share their region's id::

    build = ResultBuilder(context.label_config)
    box = build.rectangle((10, 20, 110, 220), "car", image_size=(640, 480), score=0.9)
    build.textarea("AB-123", region=box)
    build.choices("Daytime")
    return build.prediction()

See docs/predictions.md for one example per control type.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Any

from ..prediction import plain_number
from ._imageresults import ImageResults
from ._moreresults import MoreResults
from ._resultbase import Item, LabelArg, RegionRef, ResultError, UnknownLabelError
from ._spanresults import SpanResults
from .tags import ControlTag, Label, match_label

__all__ = ["ResultBuilder", "ResultError", "UnknownLabelError"]

_ONE_OF = ("single", "single-radio")


class ResultBuilder(ImageResults, SpanResults, MoreResults):
    """Builds Label Studio result items for one prediction, checked against a labeling config.

    Every method takes `from_name` (needed only when the config has several controls of that
    type), `to_name` (needed only when the control labels several objects; `chat_message`,
    `pairwise` and `ranker` take none) and a per-item `score`. Classification methods also
    take `region=` to label a region built before (for `perRegion` controls). Errors raise
    `ResultError` (`UnknownLabelError` for labels), a ValueError, with a message naming the
    control and its line.
    """

    def _classification(
        self,
        types: tuple[str, ...],
        key: str,
        payload: Any,
        from_name: str | None,
        to_name: str | None,
        score: float | None,
        region: RegionRef | None,
        labels: Sequence[str] = (),
    ) -> tuple[ControlTag, Item]:
        control = self._control(types, from_name, labels)
        if region is None:
            target = self._to_name(control, to_name)
            return control, self._add(control, target, {key: payload}, score=score)
        linked = self._per_region(control, region, to_name)
        value = {**linked["value"], key: payload}
        item = self._add(
            control, linked["to_name"], value, score=score, id=linked["id"], extra=linked["extra"]
        )
        return control, item

    def choices(
        self,
        labels: LabelArg,
        *,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        region: RegionRef | None = None,
    ) -> Item:
        """A `Choices` item: one choice (a string) or several (a list, for `choice="multiple"`)."""
        names = self._label_list(labels)
        if not names:
            raise ResultError("choices needs at least one choice")
        control = self._control(("choices",), from_name, names)
        if control.choice in _ONE_OF and len(names) > 1:
            raise ResultError(
                f"Choices {control.name!r} (line {control.line}) allows one choice, got {names}; "
                'set choice="multiple" in the config to allow several'
            )
        mapped = self._map_labels(control, names)
        return self._classification(
            ("choices",), "choices", mapped, control.name, to_name, score, region
        )[1]

    def textarea(
        self,
        text: str | Sequence[str],
        *,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        region: RegionRef | None = None,
    ) -> Item:
        """A `TextArea` item: one text, or several lines (a list)."""
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise ResultError(f"textarea needs strings, got {text!r}")
        return self._classification(
            ("textarea",), "text", texts, from_name, to_name, score, region
        )[1]

    def number(
        self,
        number: float,
        *,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        region: RegionRef | None = None,
    ) -> Item:
        """A `Number` item, checked against the tag's `min` and `max`."""
        given = number
        converted = plain_number(given)
        if converted is None:
            raise ResultError(f"number needs a number, got {given!r}")
        if not math.isfinite(converted):
            raise ResultError(f"number needs a finite number, got {given!r}")
        number = converted
        control = self._control(("number",), from_name)
        for bound, ok in (
            ("min", number >= _attr_float(control, "min", -math.inf)),
            ("max", number <= _attr_float(control, "max", math.inf)),
        ):
            if not ok:
                raise ResultError(
                    f"Number {control.name!r} has {bound}={control.attrs[bound]}, got {number}"
                )
        return self._classification(
            ("number",), "number", number, control.name, to_name, score, region
        )[1]

    def rating(
        self,
        rating: int,
        *,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        region: RegionRef | None = None,
    ) -> Item:
        """A `Rating` item: an integer from 0 to the tag's `maxRating` (5 by default)."""
        control = self._control(("rating",), from_name)
        top = int(_attr_float(control, "maxRating", 5))
        given, converted = rating, plain_number(rating)
        if not isinstance(converted, int) or not 0 <= converted <= top:
            raise ResultError(f"Rating {control.name!r} needs an integer 0..{top}, got {given!r}")
        rating = converted
        return self._classification(
            ("rating",), "rating", rating, control.name, to_name, score, region
        )[1]

    def taxonomy(
        self,
        paths: Sequence[Sequence[str]],
        *,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        region: RegionRef | None = None,
    ) -> Item:
        """A `Taxonomy` item: a list of paths from the root, e.g. `[["Eukarya", "Human"]]`.

        Each node maps like a label (predicted_values, exact, any case) among its siblings.
        """
        if isinstance(paths, str) or not paths or any(isinstance(p, str) for p in paths):
            raise ResultError(
                f'taxonomy needs a list of paths, e.g. [["Parent", "Child"]], got {paths!r}'
            )
        control = self._control(("taxonomy",), from_name)
        mapped = [self._taxonomy_path(control, list(path)) for path in paths]
        return self._classification(
            ("taxonomy",), "taxonomy", mapped, control.name, to_name, score, region
        )[1]

    def _taxonomy_path(self, control: ControlTag, path: list[str]) -> list[str]:
        if not path:
            raise ResultError("a taxonomy path must not be empty")
        if control.dynamic_labels or control.attrs.get("apiUrl"):
            return path
        level: tuple[Label, ...] = control.labels
        out: list[str] = []
        for name in path:
            label = match_label(level, name)
            if label is None:
                where = " / ".join(out) or "the root"
                options = ", ".join(node.name for node in level) or "none"
                raise UnknownLabelError(
                    f"{name!r} is not under {where} in Taxonomy {control.name!r} "
                    f"(line {control.line}); options there: {options}"
                )
            out.append(label.name)
            level = label.children
        return out

    def datetime(
        self,
        value: str | dt.date,
        *,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        region: RegionRef | None = None,
    ) -> Item:
        """A `DateTime` item. A `date` or `datetime` is formatted as the tag stores it (its
        `format`, or `%Y-%m-%dT%H:%M`, `%Y-%m-%d`, `%H:%M`, `%Y` by `only`); a string is kept."""
        control = self._control(("datetime",), from_name)
        if isinstance(value, dt.date):
            text = value.strftime(_datetime_format(control))
        elif isinstance(value, str):
            text = value
        else:
            raise ResultError(f"datetime needs a str, date or datetime, got {value!r}")
        return self._classification(
            ("datetime",), "datetime", text, control.name, to_name, score, region
        )[1]


def _attr_float(control: ControlTag, name: str, default: float) -> float:
    raw = control.attrs.get(name)
    try:
        return float(raw) if raw is not None else default
    except ValueError:
        return default


def _datetime_format(control: ControlTag) -> str:
    """The format Label Studio's DateTime tag stores values in."""
    if control.attrs.get("format"):
        return control.attrs["format"]
    only = control.attrs.get("only", "")
    parts = {p.strip() for p in only.split(",") if p.strip()}
    if not parts:
        return "%Y-%m-%dT%H:%M"
    if parts == {"time"}:
        return "%H:%M"
    if "date" in parts:
        return "%Y-%m-%dT%H:%M" if "time" in parts else "%Y-%m-%d"
    if "year" in parts and "month" not in parts:
        return "%Y"
    return "%Y-%m-%d"
