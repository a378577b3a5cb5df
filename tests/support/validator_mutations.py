"""The wrong values of tests/support/validator_cases.py: for each control type (its result type
without `labels`), named changes that make a valid item wrong, in Label Studio's eyes or in
relaxml's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relaxml.labels.rle import mask_to_rle

Item = dict[str, Any]

Change = Callable[[Item], None]
"""Changes one result item in place."""


def set_value(key: str, new: Any) -> Change:
    """Set `value[key]` to `new`."""

    def change(item: Item) -> None:
        item["value"][key] = new

    return change


def drop_value(key: str) -> Change:
    """Remove `value[key]`."""
    return lambda item: item["value"].pop(key, None)


_SPAN_CHANGES: dict[str, Change] = {
    "start-missing": drop_value("start"),
    "start-none": set_value("start", None),
    "end-a-list": set_value("end", [1]),
}
_OFFSET_CHANGES: dict[str, Change] = {
    "negative-start-offset": set_value("startOffset", -1),
    "fractional-end-offset": set_value("endOffset", 1.5),
}
_BOX_CHANGES: dict[str, Change] = {
    "x-over-100": set_value("x", 101),
    "x-negative": set_value("x", -5),
    "past-the-right-edge": set_value("x", 90),
    "width-over-100": set_value("width", 150),
    "x-not-a-number": set_value("x", "left"),
    "rotation-over-360": set_value("rotation", 361),
    "rotation-not-a-number": set_value("rotation", "upright"),
}
CHANGES: dict[str, dict[str, Change]] = {
    "rectangle": _BOX_CHANGES,
    "ocr": _BOX_CHANGES,
    "ellipse": {
        "radius-over-50": set_value("radiusX", 51),
        "radius-over-100": set_value("radiusY", 120),
        "rotation-over-360": set_value("rotation", 400),
        "y-over-100": set_value("y", 101),
    },
    "polygon": {
        "point-over-100": set_value("points", [[10, 10], [101, 10], [20, 30]]),
        "points-not-pairs": set_value("points", [[10, 10, 1]]),
        "points-missing": drop_value("points"),
    },
    "keypoint": {"x-over-100": set_value("x", 100.5), "y-missing": drop_value("y")},
    "brush": {
        "rle-empty": set_value("rle", []),
        "rle-over-255": set_value("rle", [300, 1, 2]),
        "rle-of-another-size": set_value("rle", mask_to_rle([[255] * 2] * 2)),
    },
    "textarea": {
        "text-a-string": set_value("text", "hello"),
        "text-of-numbers": set_value("text", [1]),
    },
    "number": {
        "number-a-word": set_value("number", "many"),
        "number-missing": drop_value("number"),
        "number-over-max": set_value("number", 11),
    },
    "rating": {
        "rating-over-max": set_value("rating", 99),
        "rating-negative": set_value("rating", -1),
        "rating-fractional": set_value("rating", 2.5),
    },
    "datetime": {"datetime-a-number": set_value("datetime", 2024)},
    "taxonomy": {"taxonomy-flat": set_value("taxonomy", ["x"])},
    "hypertext": {**_SPAN_CHANGES, **_OFFSET_CHANGES},
    "paragraph": {**_SPAN_CHANGES, **_OFFSET_CHANGES},
    "": _SPAN_CHANGES,  # Labels
    "timeseries": {
        **_SPAN_CHANGES,
        "instant-missing": drop_value("instant"),
        "instant-as-1": set_value("instant", 1),
    },
    "pairwise": {
        "selected-a-list": set_value("selected", ["left"]),
        "selected-missing": drop_value("selected"),
    },
    "ranker": {
        "ranker-a-list": set_value("ranker", ["a"]),
        "ranker-of-strings": set_value("ranker", {"r": "a"}),
    },
    "timeline": {"ranges-empty": set_value("ranges", []), "ranges-missing": drop_value("ranges")},
    "chatmessage": {
        "content-missing": set_value("chatmessage", {"role": "user"}),
        "role-a-number": set_value("chatmessage", {"role": 1, "content": "hi"}),
        "created-at-fractional": set_value(
            "chatmessage", {"role": "a", "content": "b", "createdAt": 0.5}
        ),
        "message-a-string": set_value("chatmessage", "hi"),
    },
    "videorectangle": {
        "frame-width-over-100": set_value(
            "sequence", [{"frame": 1, "time": 0, "x": 1, "y": 1, "width": 120, "height": 1}]
        ),
        "frames-count-missing": drop_value("framesCount"),
        "sequence-not-a-list": set_value("sequence", {"frame": 1}),
    },
}
