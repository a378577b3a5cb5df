"""The core every result builder shares: finding the control, mapping labels, ids, scores.

`ResultBuilder` (in `relaxml.labels.results`) combines this base with one mixin per family of
controls.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..prediction import Prediction, plain_number
from .labelconfig import LabelConfig, parse_label_config
from .tags import ControlTag

Item = dict[str, Any]
"""One item of a prediction's `result` list."""

RegionRef = Mapping[str, Any] | str
"""A region: the item a builder returned for it, or its id."""

LabelArg = str | Sequence[str] | None
"""One label, several labels, or None (for controls without labels)."""

_IMAGE_KEYS = ("original_width", "original_height", "image_rotation", "item_index")

SCORE_SLACK = 1e-6
"""How far a score may stray outside 0-1 (the rounding of a float32 softmax) to be clamped into
it; beyond, it is refused: Label Studio refuses a prediction whose score is outside 0-1."""


class ResultError(ValueError):
    """A builder call that cannot produce a valid result item; the message says why."""


class UnknownLabelError(ResultError):
    """A label (or model class name) that maps to no label of the control."""


def _where(control: ControlTag) -> str:
    return f"{control.tag} {control.name!r} (line {control.line})"


class ResultBuilderBase:
    """Holds the config and the items built so far; resolves controls, labels and ids."""

    def __init__(self, config: str | LabelConfig) -> None:
        """Build results for `config`: a labeling config string (parsed once, cached) or a
        parsed `LabelConfig`."""
        self.config = config if isinstance(config, LabelConfig) else parse_label_config(config)
        self.result: list[Item] = []
        """The items built so far, in order: the prediction's `result`."""
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self.result)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.result)

    def prediction(
        self, score: float | None = None, model_version: str | None = None
    ) -> Prediction:
        """A `Prediction` holding the items built so far.

        Without `score`, relaxml uses the mean of the regions' scores, or 0.0. A score must be
        between 0 and 1 (`ResultError` otherwise).
        """
        checked = self._score(score)
        return Prediction(result=list(self.result), score=checked, model_version=model_version)

    # --- controls ---------------------------------------------------------------------------

    def _control(
        self, types: Sequence[str], from_name: str | None, labels: Sequence[str] = ()
    ) -> ControlTag:
        """The control to fill: `from_name`, else the only control of `types` (the only one
        knowing `labels`, when several exist)."""
        wanted = ", ".join(types)
        if from_name is not None:
            control = self.config.control(from_name)
            if control.type not in types:
                raise ResultError(f"{_where(control)} is not one of: {wanted}")
            return control
        candidates = self.config.controls_of_type(*types)
        if not candidates:
            raise ResultError(f"the label config has no control of type {wanted}")
        if len(candidates) > 1 and labels:
            knowing = [c for c in candidates if all(self._knows(c, label) for label in labels)]
            if len(knowing) == 1:
                return knowing[0]
            if not knowing:
                known = "; ".join(f"{c.name!r}: {', '.join(c.label_names)}" for c in candidates)
                raise UnknownLabelError(
                    f"no {wanted} control has the label(s) {list(labels)}; their labels: {known}"
                )
        if len(candidates) > 1:
            names = ", ".join(repr(c.name) for c in candidates)
            raise ResultError(
                f"the label config has several {wanted} controls ({names}): pass from_name"
            )
        return candidates[0]

    @staticmethod
    def _knows(control: ControlTag, label: str) -> bool:
        return control.dynamic_labels or control.match_label(label) is not None

    @staticmethod
    def _to_name(control: ControlTag, to_name: str | None) -> str:
        if to_name is None:
            return control.to_name
        if to_name not in control.to_names:
            raise ResultError(
                f"{_where(control)} does not label {to_name!r}: toName is "
                f"{','.join(control.to_names)}"
            )
        return to_name

    def _object_type(self, to_name: str) -> str | None:
        obj = self.config.get_object(to_name)
        return obj.type if obj is not None else None

    # --- labels -----------------------------------------------------------------------------

    @staticmethod
    def _label_list(labels: LabelArg) -> list[str]:
        if labels is None:
            return []
        if isinstance(labels, str):
            return [labels]
        out = list(labels)
        if not all(isinstance(label, str) for label in out):
            raise ResultError(f"labels must be strings, got {labels!r}")
        return out

    def _map_labels(self, control: ControlTag, labels: Sequence[str]) -> list[str]:
        """Model class names → the names results store (predicted_values, exact, any case)."""
        if control.dynamic_labels:
            return list(labels)
        mapped = []
        for name in labels:
            label = control.match_label(name)
            if label is None:
                known = ", ".join(control.label_names) or "none"
                child = "Choice" if control.type in ("choices", "taxonomy") else "Label"
                raise UnknownLabelError(
                    f"{name!r} is not a label of {_where(control)}; its labels: {known}. Add "
                    f'<{child} value="{name}"/>, or list {name!r} in a label\'s predicted_values'
                )
            mapped.append(label.name)
        return mapped

    # --- items ------------------------------------------------------------------------------

    @staticmethod
    def _score(score: float | None) -> float | None:
        if score is None:
            return None
        number = plain_number(score)
        if number is None:
            raise ResultError(f"score must be a number, got {score!r}")
        if not math.isfinite(number):
            raise ResultError(f"score must be finite, got {score!r}")
        if not -SCORE_SLACK <= number <= 1 + SCORE_SLACK:
            raise ResultError(
                f"score must be between 0 and 1 (a confidence), got {score!r}: Label Studio "
                "refuses a prediction whose score is outside 0-1"
            )
        return min(1.0, max(0.0, float(number)))

    def _add(
        self,
        control: ControlTag,
        to_name: str,
        value: dict[str, Any],
        *,
        score: float | None = None,
        id: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Item:
        """Append one item; a new region gets a stable id unless `id` is given."""
        item: Item = {
            "id": "",
            "from_name": control.name,
            "to_name": to_name,
            "type": control.type,
            "value": value,
        }
        item.update(extra or {})
        checked = self._score(score)
        if checked is not None:
            item["score"] = checked
        item["id"] = id if id is not None else self._new_id(item)
        self._ids.add(item["id"])
        self.result.append(item)
        return item

    def _new_id(self, item: Item) -> str:
        """A stable id: a digest of the item's content, suffixed when the same item repeats."""
        value = dict(item["value"])
        digest = hashlib.blake2b(digest_size=5)
        rle = value.pop("rle", None)
        if rle is not None:
            digest.update(bytes(rle))
        body = [item["from_name"], item["to_name"], item["type"], value]
        digest.update(json.dumps(body, sort_keys=True, default=str).encode())
        base = digest.hexdigest()
        candidate, n = base, 1
        while candidate in self._ids:
            n += 1
            candidate = f"{base}-{n}"
        return candidate

    def _region(self, region: RegionRef) -> Item:
        """The item of a region built earlier by this builder."""
        wanted = region if isinstance(region, str) else region.get("id")
        for item in self.result:
            if item.get("id") == wanted and item.get("type") != "relation":
                return item
        raise ResultError(
            f"no region with id {wanted!r} in this builder: pass the item a region builder "
            "returned (rectangle, polygon, span, ...) or its id"
        )

    def _per_region(self, control: ControlTag, region: RegionRef, to_name: str | None) -> Item:
        """What a per-region item inherits from its region: id, to_name, geometry, image size."""
        item = self._region(region)
        if to_name is not None and to_name != item["to_name"]:
            raise ResultError(f"the region labels {item['to_name']!r}, not {to_name!r}")
        self._to_name(control, item["to_name"])
        geometry = {k: v for k, v in item["value"].items() if k != item["type"]}
        extra = {k: item[k] for k in _IMAGE_KEYS if k in item}
        return {"id": item["id"], "to_name": item["to_name"], "value": geometry, "extra": extra}
