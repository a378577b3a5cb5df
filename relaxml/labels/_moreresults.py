"""Builders for chats, comparisons, rankings, videos and OCR on documents: `Chat`,
`Pairwise`, `Ranker`, `VideoRectangle` (with the labels of a `Labels` on the same video),
`TimelineLabels` and `OcrLabels`.

Videos are addressed in frames, numbered from 1 as Label Studio's editor numbers them; a
keyframe's `time` is `frame / fps` seconds (as the editor writes it), and a region's `duration`
is `frames_count / fps`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..prediction import plain_number
from ._imagefit import fit_box
from ._resultbase import Item, LabelArg, ResultBuilderBase, ResultError, UnknownLabelError
from .geometry import BoxFormat, Unit
from .tags import ControlTag

__all__ = ["MoreResults"]

_SIDES = ("left", "right")

Keyframe = tuple[int, Sequence[float]] | tuple[int, Sequence[float], bool]
"""A video box at one frame: `(frame, box)` or `(frame, box, enabled)`."""


class MoreResults(ResultBuilderBase):
    """Chat, comparison, ranking and video builders; part of `ResultBuilder`."""

    def chat_message(
        self,
        content: str,
        *,
        role: str = "assistant",
        created_at: int | None = None,
        from_name: str | None = None,
        score: float | None = None,
    ) -> Item:
        """A message of a `<Chat>` (a control without `toName`: it labels itself), e.g. the
        model's answer in a conversation. `created_at` is a Unix time in milliseconds."""
        if not isinstance(content, str):
            raise ResultError(f"a chat message's content must be a string, got {content!r}")
        if not isinstance(role, str) or not role:
            raise ResultError(f"a chat message's role must be a non-empty string, got {role!r}")
        control = self._control(("chatmessage",), from_name)
        message: dict[str, Any] = {"role": role, "content": content}
        if created_at is not None:
            stamp = plain_number(created_at)
            if not isinstance(stamp, int) or isinstance(created_at, bool):
                raise ResultError(
                    f"created_at must be an integer (Unix time in milliseconds), got {created_at!r}"
                )
            message["createdAt"] = stamp
        return self._add(control, control.to_name, {"chatmessage": message}, score=score)

    def pairwise(
        self,
        selected: str,
        *,
        from_name: str | None = None,
        score: float | None = None,
    ) -> Item:
        """A `Pairwise` choice between its two objects: `"left"` or `"right"`, or the name of
        one of the two objects of its `toName` (the first is left)."""
        control = self._control(("pairwise",), from_name)
        side = selected
        if selected in control.to_names[:2] and selected not in _SIDES:
            side = _SIDES[control.to_names.index(selected)]
        if side not in _SIDES:
            raise ResultError(
                f"Pairwise {control.name!r} (line {control.line}) needs 'left' or 'right' (or "
                f"one of {', '.join(control.to_names)}), got {selected!r}"
            )
        return self._add(control, control.to_name, {"selected": side}, score=score)

    def ranker(
        self,
        ranking: Sequence[str] | Mapping[str, Sequence[str]],
        *,
        from_name: str | None = None,
        score: float | None = None,
    ) -> Item:
        """A `Ranker` order of the items of its `List`, by their ids.

        A list ranks all the items (stored under the Ranker's name); with `<Bucket>`s, a dict
        maps each bucket's name to the ids in it, in order. An id may appear once.
        """
        control = self._control(("ranker",), from_name)
        if isinstance(ranking, str):
            raise ResultError(f"ranker needs a list of item ids, got the string {ranking!r}")
        buckets = dict(ranking) if isinstance(ranking, Mapping) else {control.name: ranking}
        value: dict[str, list[str]] = {}
        seen: set[str] = set()
        for bucket, ids in buckets.items():
            if not isinstance(bucket, str) or not bucket:
                raise ResultError(f"a bucket's name must be a non-empty string, got {bucket!r}")
            listed = [ids] if isinstance(ids, str) else list(ids)
            if not all(isinstance(i, str) for i in listed):
                raise ResultError(f"item ids must be strings, got {ids!r} in {bucket!r}")
            again = seen.intersection(listed) | {i for i in listed if listed.count(i) > 1}
            if again:
                raise ResultError(f"item ids {sorted(again)} appear more than once in the ranking")
            seen.update(listed)
            value[bucket] = listed
        return self._add(control, control.to_name, {"ranker": value}, score=score)

    def timeline(
        self,
        ranges: Sequence[tuple[int, int]],
        label: LabelArg,
        *,
        frames_count: int | None = None,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `TimelineLabels` region of a `Video`: `ranges` of frames `(start, end)`, both
        included, numbered from 1 (and at most `frames_count`, when given)."""
        labels = self._label_list(label)
        if not labels:
            raise ResultError("a timeline region needs a label")
        if isinstance(ranges, tuple) and len(ranges) == 2 and _frame(ranges[0]) is not None:
            ranges = [ranges]  # type: ignore[list-item]
        if not ranges:
            raise ResultError("a timeline region needs at least one (start, end) range of frames")
        control = self._control(("timelinelabels",), from_name, labels)
        target = self._video(control, to_name)
        checked = []
        for pair in ranges:
            if len(pair) != 2:
                raise ResultError(f"a range is (start, end) frames, got {pair!r}")
            start, end = _frame(pair[0]), _frame(pair[1])
            if start is None or end is None or start > end:
                raise ResultError(
                    f"a range needs frames 1 <= start <= end (integers), got {pair[0]!r}, "
                    f"{pair[1]!r}"
                )
            _within(end, frames_count)
            checked.append({"start": start, "end": end})
        value = {"ranges": checked, control.type: self._map_labels(control, labels)}
        return self._add(control, target, value, score=score, id=id)

    def video_rectangle(
        self,
        keyframes: Sequence[Keyframe],
        label: LabelArg = None,
        *,
        frame_size: tuple[int, int],
        frames_count: int,
        fps: float | None = None,
        format: BoxFormat = "xyxy",
        unit: Unit = "px",
        rotation: float = 0.0,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """A `VideoRectangle` track: boxes at keyframes, `(frame, box)` or `(frame, box,
        enabled)`, frames numbered from 1, boxes as for `rectangle` in a frame of `frame_size`
        `(width, height)`.

        `enabled` says whether the editor interpolates from this keyframe to the next; it
        defaults to true, and false on the last keyframe (the track ends there). A `label` is a
        label of the `Labels` control on the same video (stored in `value.labels`). `fps`
        defaults to the `Video` tag's `framerate` (24 without one, as in Label Studio).
        """
        labels = self._label_list(label)
        control = self._control(("videorectangle",), from_name)
        target = self._video(control, to_name)
        if fps is None:
            video = self.config.get_object(target)
            given = video.attrs.get("framerate", "24") if video is not None else "24"
            try:
                fps = float(given)
            except ValueError:
                raise ResultError(
                    f"the video's framerate is {given!r}, not a number: pass fps"
                ) from None
        rate = plain_number(fps)
        if rate is None or not math.isfinite(rate) or rate <= 0:
            raise ResultError(f"fps must be a positive number, got {fps!r}")
        total = _frame(frames_count)
        if total is None:
            raise ResultError(f"frames_count must be an integer >= 1, got {frames_count!r}")
        if not keyframes:
            raise ResultError("a video rectangle needs at least one keyframe")
        frames: dict[int, dict[str, Any]] = {}
        for index, keyframe in enumerate(sorted(keyframes, key=lambda k: _sort_key(k[0]))):
            frame = _frame(keyframe[0])
            if frame is None:
                raise ResultError(
                    f"a keyframe's frame must be an integer >= 1, got {keyframe[0]!r}"
                )
            _within(frame, total)
            if frame in frames:
                raise ResultError(f"two keyframes at frame {frame}")
            last = index == len(keyframes) - 1
            enabled = bool(keyframe[2]) if len(keyframe) > 2 else not last
            box = fit_box(keyframe[1], frame_size, format, unit, rotation)
            frames[frame] = {"frame": frame, "enabled": enabled, **box, "time": frame / rate}
        value: dict[str, Any] = {
            "framesCount": total,
            "duration": total / rate,
            "sequence": list(frames.values()),
        }
        if labels:
            value["labels"] = self._video_labels(target, labels)
        return self._add(control, target, value, score=score, id=id)

    def ocr_region(
        self,
        box: Sequence[float],
        label: LabelArg,
        *,
        page_size: tuple[int, int],
        text: str | None = None,
        page_index: int | None = None,
        format: BoxFormat = "xyxy",
        unit: Unit = "px",
        rotation: float = 0.0,
        from_name: str | None = None,
        to_name: str | None = None,
        score: float | None = None,
        id: str | None = None,
    ) -> Item:
        """An `OcrLabels` region of a `Pdf` (or an image): a box as for `rectangle` on a page
        of `page_size` `(width, height)`, its label(s), the recognized `text` (`ocrtext`) and
        the page (`pageIndex`, as Label Studio's editor numbers pages; left out when None)."""
        labels = self._label_list(label)
        if not labels:
            raise ResultError("an OCR region needs a label")
        if text is not None and not isinstance(text, str):
            raise ResultError(f"an OCR region's text must be a string, got {text!r}")
        if page_index is not None and (
            isinstance(page_index, bool) or not isinstance(page_index, int) or page_index < 0
        ):
            raise ResultError(f"page_index must be an integer >= 0, got {page_index!r}")
        control = self._control(("ocrlabels",), from_name, labels)
        target = self._to_name(control, to_name)
        value: dict[str, Any] = fit_box(box, page_size, format, unit, rotation)
        if text is not None:
            value["ocrtext"] = text
        if page_index is not None:
            value["pageIndex"] = page_index
        value["ocrlabels"] = self._map_labels(control, labels)
        return self._add(control, target, value, score=score, id=id)

    def _video(self, control: ControlTag, to_name: str | None) -> str:
        target = self._to_name(control, to_name)
        if self._object_type(target) not in ("video", None):
            raise ResultError(f"{control.tag} {control.name!r} labels {target!r}, not a Video")
        return target

    def _video_labels(self, target: str, labels: list[str]) -> list[str]:
        controls = [c for c in self.config.controls_for(target) if c.type == "labels"]
        if not controls:
            raise ResultError(
                f"no <Labels> control labels the video {target!r}: add one to give boxes labels"
            )
        knowing = [c for c in controls if all(self._knows(c, name) for name in labels)]
        if not knowing:
            known = "; ".join(f"{c.name!r}: {', '.join(c.label_names)}" for c in controls)
            raise UnknownLabelError(f"no Labels control of {target!r} has {labels}; {known}")
        return self._map_labels(knowing[0], labels)


def _frame(value: object) -> int | None:
    number = plain_number(value)
    if isinstance(value, bool) or not isinstance(number, int) or number < 1:
        return None
    return number


def _sort_key(value: object) -> float:
    number = plain_number(value)
    return float(number) if number is not None and math.isfinite(number) else -math.inf


def _within(frame: int, frames_count: int | None) -> None:
    if frames_count is not None and frame > frames_count:
        raise ResultError(f"frame {frame} is past the video's last frame ({frames_count})")
