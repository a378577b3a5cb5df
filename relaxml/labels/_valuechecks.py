"""The `value` checks of `check_prediction` for controls other than image regions.

Each returns a list of (code, message) pairs; `validation.py` adds the item's position. The
rules are at least those of Label Studio's own prediction validator
(`LabelInterface.validate_prediction` of its SDK): a value it rejects is reported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from ..prediction import plain_number, real_number
from .tags import ControlTag

__all__ = ["EPS", "Found", "check_span", "check_value", "finite", "strings"]

EPS = 1e-6
"""How far a number may fall below 0 (float rounding) before it is a problem. Upper bounds that
Label Studio's validator holds (100, 50, 360, a score's 1) are exact, as there."""

Found = list[tuple[str, str]]
"""(code, message) pairs: the problems of one item."""

SPAN_TYPES = ("labels", "hypertextlabels", "paragraphlabels", "timeserieslabels")
"""Controls whose regions are spans with `start` and `end`."""


def check_value(
    control: ControlTag, value: Mapping[str, Any], where: str, object_type: str | None
) -> Found:
    """Problems of `value` for `control`, beyond its labels (checked by the caller)."""
    kind = control.type
    if kind == "textarea":
        if not strings(value.get("text")):
            return [("bad-value", "value.text must be a list of strings (one per line)")]
    elif kind == "number":
        return _check_number(control, value.get("number"), where)
    elif kind == "rating":
        rating = value.get("rating")
        top = _attr(control, "maxRating")
        top = 5 if top is None else top
        number = plain_number(rating)
        if not (isinstance(number, int) and 0 <= number <= top):
            return [("bad-value", f"value.rating must be an integer 0..{top:g}, got {rating!r}")]
    elif kind == "datetime" and not isinstance(value.get("datetime"), str):
        return [("bad-value", "value.datetime must be a string")]
    elif kind in SPAN_TYPES and object_type not in ("image", "video"):
        return check_span(kind, value)
    elif kind == "ranker":
        return _check_ranker(value.get("ranker"))
    elif kind == "pairwise" and value.get("selected") not in ("left", "right"):
        return [
            (
                "bad-value",
                f"value.selected must be 'left' or 'right', not {value.get('selected')!r}",
            )
        ]
    elif kind == "videorectangle":
        return _check_video_boxes(value)
    elif kind == "ocrlabels":
        return _check_ocr(value)
    elif kind == "chatmessage":
        return _check_chat(value.get("chatmessage"))
    elif kind == "reactcode" and not isinstance(value.get("reactcode"), Mapping):
        return [("bad-value", "value.reactcode must be a dict")]
    elif kind == "timelinelabels":
        return _check_timeline(value.get("ranges"))
    return []


def check_span(kind: str, value: Mapping[str, Any]) -> Found:
    """A span's `start` and `end` (numbers or, for HyperText, XPaths), its offsets, and a time
    series span's `instant`."""
    found: Found = []
    bounds = (value.get("start"), value.get("end"))
    if not all(isinstance(bound, str) or finite(bound) for bound in bounds):
        found.append(
            (
                "bad-value",
                "a span needs value.start and value.end (numbers, or XPaths for HyperText), "
                f"got {bounds[0]!r} and {bounds[1]!r}",
            )
        )
    for key in ("startOffset", "endOffset"):
        offset = value.get(key)
        if offset is not None and not (_integer(offset) and offset >= 0):
            found.append(
                ("bad-value", f"value.{key} must be a non-negative integer, got {offset!r}")
            )
    if kind == "timeserieslabels" and not isinstance(value.get("instant"), bool):
        found.append(
            (
                "bad-value",
                "value.instant must be true (a point) or false (a range), got "
                f"{value.get('instant')!r}",
            )
        )
    return found


def _check_number(control: ControlTag, number: Any, where: str) -> Found:
    if not finite(number):
        return [("bad-value", f"value.number must be a finite number, got {number!r}")]
    low, high = _attr(control, "min"), _attr(control, "max")
    if (low is not None and number < low) or (high is not None and number > high):
        return [("out-of-range", f"{number} is outside {where}'s min/max ({low}, {high})")]
    return []


def _check_ranker(ranker: Any) -> Found:
    if not (
        isinstance(ranker, Mapping)
        and all(isinstance(k, str) and strings(v) for k, v in ranker.items())
    ):
        return [("bad-value", "value.ranker must map each list (or bucket) to a list of ids")]
    return []


def _check_video_boxes(value: Mapping[str, Any]) -> Found:
    found: Found = []
    if not _integer(value.get("framesCount")):
        found.append(("bad-value", "value.framesCount must be an integer"))
    if not finite(value.get("duration")):
        found.append(("bad-value", "value.duration must be a number (seconds)"))
    if "labels" in value and not strings(value["labels"]):
        found.append(("bad-value", "value.labels must be a list of strings"))
    sequence = value.get("sequence")
    if not isinstance(sequence, list) or not all(isinstance(s, Mapping) for s in sequence):
        return [*found, ("bad-value", "value.sequence must be a list of keyframes (dicts)")]
    for index, frame in enumerate(sequence):
        if not _integer(frame.get("frame")) or not finite(frame.get("time")):
            found.append(("bad-value", f"value.sequence[{index}] needs a frame and a time"))
        rotation = frame.get("rotation")
        if rotation is not None and not finite(rotation):
            found.append(("bad-value", f"value.sequence[{index}].rotation must be a number"))
        for key in ("x", "y", "width", "height"):
            number = frame.get(key)
            if not finite(number):
                found.append(("bad-value", f"value.sequence[{index}].{key} must be a number"))
            elif not -EPS <= number <= 100:
                found.append(
                    ("out-of-range", f"value.sequence[{index}].{key} = {number} is outside 0-100")
                )
    return found


def _check_ocr(value: Mapping[str, Any]) -> Found:
    """An `OcrLabels` region of a `Pdf`: a box (in percent of the page) on a page."""
    found: Found = [
        ("bad-value", f"value.{key} must be a number, got {value.get(key)!r}")
        for key in ("x", "y", "width", "height")
        if not finite(value.get(key))
    ]
    if value.get("rotation") is not None and not finite(value["rotation"]):
        found.append(("bad-value", f"value.rotation must be a number, got {value['rotation']!r}"))
    if value.get("ocrtext") is not None and not isinstance(value["ocrtext"], str):
        found.append(("bad-value", "value.ocrtext must be a string"))
    if value.get("pageIndex") is not None and not _integer(value["pageIndex"]):
        found.append(("bad-value", "value.pageIndex must be an integer"))
    return found


def _check_chat(message: Any) -> Found:
    """A message of a `<Chat>`: `{"role": ..., "content": ..., "createdAt": ...}`."""
    if not (
        isinstance(message, Mapping)
        and isinstance(message.get("role"), str)
        and isinstance(message.get("content"), str)
    ):
        return [
            ("bad-value", "value.chatmessage must be a dict with a role and a content (strings)")
        ]
    created = message.get("createdAt")
    if created is not None and not _integer(created):
        return [("bad-value", f"value.chatmessage.createdAt must be an integer, got {created!r}")]
    return []


def _check_timeline(ranges: Any) -> Found:
    if not (
        isinstance(ranges, list)
        and ranges
        and all(
            isinstance(r, Mapping) and finite(r.get("start")) and finite(r.get("end"))
            for r in ranges
        )
    ):
        return [("bad-value", "value.ranges must be a non-empty list of {start, end} frames")]
    return []


def finite(value: Any) -> TypeGuard[float]:
    """A finite real number: int, float, a NumPy scalar, ... (relaxml sends them as numbers)."""
    return real_number(value) is not None


def strings(value: Any) -> TypeGuard[list[str]]:
    """A list of strings."""
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _integer(value: Any) -> TypeGuard[float]:
    number = real_number(value)
    return number is not None and number == int(number)


def _attr(control: ControlTag, name: str) -> float | None:
    try:
        return float(control.attrs[name])
    except (KeyError, ValueError):
        return None
