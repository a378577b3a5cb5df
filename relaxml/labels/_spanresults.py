"""Builders for spans (text, HTML, audio, time series) and for relations between regions."""

from __future__ import annotations

import math
from typing import Any

from ..prediction import plain_number
from ._resultbase import (
    Item,
    LabelArg,
    RegionRef,
    ResultBuilderBase,
    ResultError,
    UnknownLabelError,
)
from .tags import ControlTag, match_label

__all__ = ["SpanResults"]

_DIRECTIONS = ("right", "left", "bi")


class SpanResults(ResultBuilderBase):
    """Span and relation builders; part of `ResultBuilder`."""

    def _span_control(
        self,
        types: tuple[str, ...],
        objects: tuple[str, ...],
        label: LabelArg,
        from_name: str | None,
        to_name: str | None,
    ) -> tuple[ControlTag, str, list[str]]:
        labels = self._label_list(label)
        if not labels:
            raise ResultError("a span needs at least one label")
        control = self._control(types, from_name, labels)
        target = self._to_name(control, to_name)
        kind = self._object_type(target)
        if kind not in (*objects, None):
            raise ResultError(
                f"{control.tag} {control.name!r} labels {target!r}, a {kind}; this builder is "
                f"for {' or '.join(objects)} (text: span, hypertext: html_span, audio: "
                "audio_segment, timeseries: timeseries_span, paragraphs: paragraph_span)"
            )
        return control, target, self._map_labels(control, labels)

    def span(
        self,
        start: int,
        end: int,
        label: LabelArg,
        *,
        text: str | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `Labels` span of a `Text`: characters `start` (inclusive) to `end` (exclusive).

        `text` is the spanned text, `task_text[start:end]`: optional but conventional.
        """
        first, last = _int(start), _int(end)
        if first is None or last is None or not 0 <= first <= last:
            raise ResultError(f"a text span needs integers 0 <= start <= end, got {start}, {end}")
        control, target, labels = self._span_control(
            ("labels",), ("text",), label, from_name, to_name
        )
        value: dict[str, Any] = {"start": first, "end": last}
        if text is not None:
            value["text"] = text
        value[control.type] = labels
        return self._add(control, target, value, score=score, id=id)

    def html_span(
        self,
        start: str,
        end: str,
        label: LabelArg,
        *,
        start_offset: int,
        end_offset: int,
        text: str | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `Labels` or `HyperTextLabels` span of a `HyperText`.

        `start` and `end` are XPaths of the elements holding the span's ends (e.g.
        `"/p[1]/text()[1]"`), `start_offset` and `end_offset` character offsets within them.
        """
        offsets = (_int(start_offset), _int(end_offset))
        if offsets[0] is None or offsets[1] is None or min(offsets[0], offsets[1]) < 0:
            raise ResultError("start_offset and end_offset must be integers >= 0")
        control, target, labels = self._span_control(
            ("labels", "hypertextlabels"), ("hypertext",), label, from_name, to_name
        )
        value = _offset_span(start, end, offsets[0], offsets[1], text, control.type, labels)
        return self._add(control, target, value, score=score, id=id)

    def paragraph_span(
        self,
        start: int,
        end: int,
        label: LabelArg,
        *,
        start_offset: int,
        end_offset: int,
        text: str | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `ParagraphLabels` span of a `Paragraphs`: from character `start_offset` of paragraph
        `start` to character `end_offset` (exclusive) of paragraph `end` (indexes from 0)."""
        numbers = [_int(n) for n in (start, end, start_offset, end_offset)]
        first, last, offset0, offset1 = numbers
        if first is None or last is None or offset0 is None or offset1 is None:
            raise ResultError(
                "a paragraph span needs integer paragraph indexes and offsets, got "
                f"{start!r}, {end!r}, {start_offset!r}, {end_offset!r}"
            )
        if not 0 <= first <= last or min(offset0, offset1) < 0:
            raise ResultError(
                f"a paragraph span needs 0 <= start <= end and offsets >= 0, got paragraphs "
                f"{first}..{last}, offsets {offset0}..{offset1}"
            )
        if first == last and offset0 > offset1:
            raise ResultError(f"end_offset {offset1} is before start_offset {offset0}")
        control, target, labels = self._span_control(
            ("paragraphlabels",), ("paragraphs",), label, from_name, to_name
        )
        value = _offset_span(str(first), str(last), offset0, offset1, text, control.type, labels)
        return self._add(control, target, value, score=score, id=id)

    def audio_segment(
        self,
        start: float,
        end: float,
        label: LabelArg,
        *,
        channel: int | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `Labels` region of an `Audio`, from `start` to `end` seconds."""
        begin, finish = _check_interval(start, end, "an audio segment")
        control, target, labels = self._span_control(
            ("labels",), ("audio", "audioplus"), label, from_name, to_name
        )
        value: dict[str, Any] = {"start": float(begin), "end": float(finish)}
        if channel is not None:
            value["channel"] = int(channel)
        value[control.type] = labels
        return self._add(control, target, value, score=score, id=id)

    def timeseries_span(
        self,
        start: float | str,
        end: float | str,
        label: LabelArg,
        *,
        instant: bool | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `TimeSeriesLabels` region from `start` to `end`.

        Numbers are values of the time column (or row indexes without one); strings must be in
        the `TimeSeries` tag's `timeFormat`. `instant` defaults to `start == end`.
        """
        if not isinstance(start, str) or not isinstance(end, str):
            if isinstance(start, str) or isinstance(end, str):
                raise ResultError("start and end must both be numbers or both be strings")
            start, end = _check_interval(start, end, "a time series span")
        control, target, labels = self._span_control(
            ("timeserieslabels",), ("timeseries",), label, from_name, to_name
        )
        value: dict[str, Any] = {
            "start": start,
            "end": end,
            "instant": bool(start == end if instant is None else instant),
            control.type: labels,
        }
        return self._add(control, target, value, score=score, id=id)

    def relation(
        self,
        source: RegionRef,
        target: RegionRef,
        labels: LabelArg = None,
        *,
        direction: str = "right",
    ) -> Item:
        """A relation from one region to another (both built by this builder).

        `labels` must be `<Relation>` values of the config's `<Relations>`; `direction` is
        `right` (source → target), `left` or `bi`.
        """
        if direction not in _DIRECTIONS:
            raise ResultError(f"direction must be one of {', '.join(_DIRECTIONS)}")
        item: Item = {
            "from_id": self._region(source)["id"],
            "to_id": self._region(target)["id"],
            "type": "relation",
            "direction": direction,
        }
        names = self._label_list(labels)
        if names:
            item["labels"] = [self._relation_label(name) for name in names]
        self.result.append(item)
        return item

    def _relation_label(self, name: str) -> str:
        label = match_label(self.config.relation_labels, name)
        if label is None:
            names = ", ".join(r.name for r in self.config.relation_labels) or "none"
            raise UnknownLabelError(
                f"{name!r} is not a <Relation> of the label config; relations: {names}"
            )
        return label.name


def _int(value: object) -> int | None:
    """`value` as an `int` when it is an integer (NumPy integers included), else None."""
    number = plain_number(value)
    return number if isinstance(number, int) else None


def _check_interval(start: Any, end: Any, what: str) -> tuple[int | float, int | float]:
    """`start` and `end` as Python numbers, when both are finite and `start <= end`."""
    numbers = (plain_number(start), plain_number(end))
    low, high = numbers
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        raise ResultError(f"{what} needs finite numbers start <= end, got {start!r}, {end!r}")
    if low > high:
        raise ResultError(f"{what} needs finite numbers start <= end, got {start!r}, {end!r}")
    return low, high


def _offset_span(
    start: str,
    end: str,
    start_offset: int,
    end_offset: int,
    text: str | None,
    kind: str,
    labels: list[str],
) -> dict[str, Any]:
    """The value of a span between two positions (XPaths or paragraph indexes) with character
    offsets within them, as HyperText and Paragraphs spans store it."""
    value: dict[str, Any] = {
        "start": start,
        "end": end,
        "startOffset": start_offset,
        "endOffset": end_offset,
    }
    if text is not None:
        value["text"] = text
    value[kind] = labels
    return value
