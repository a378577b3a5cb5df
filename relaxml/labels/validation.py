"""Check a prediction against the labeling config before it leaves relaxml.

Label Studio stores predictions without checking them against the config, and its editor then
silently drops what it cannot show. `check_prediction` finds those mistakes first: unknown
`from_name` or `to_name`, a wrong `type`, labels the control does not have, image coordinates
outside 0-100, a missing `original_width`, malformed values. It also reports whatever Label
Studio's own validator (`LabelInterface.validate_prediction` in its SDK, which Label Studio runs
on stored predictions when prediction validation is on) rejects: a score outside 0-1, a rotation
over 360, an ellipse radius over 50, a relation without a `direction`, ... It never raises: it
returns a list of `Problem`s, empty when the prediction is fine.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from ..prediction import Prediction, is_mapping
from ._imagechecks import IMAGE_TYPES, check_image
from ._valuechecks import Found, check_span, check_value, finite, strings
from .labelconfig import LabelConfig, LabelConfigError, parse_label_config
from .tags import ControlTag, Label

__all__ = ["Problem", "check_prediction", "check_result"]

_DIRECTIONS = ("left", "right", "bi")
"""A relation's `direction`: an arrow from `from_id` to `to_id` (`right`), back, or both."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a prediction.

    `code` is a stable identifier (`unknown-from-name`, `unknown-to-name`, `wrong-type`,
    `unknown-label`, `out-of-range`, `missing-original-size`, `bad-value`, `bad-score`,
    `bad-relation`, `bad-config`, `bad-shape`); `index` is the position of the item in `result`,
    or None for the prediction as a whole; `message` explains it for a person.
    """

    code: str
    message: str
    index: int | None = None

    def __str__(self) -> str:
        return self.message if self.index is None else f"result[{self.index}]: {self.message}"


def check_prediction(
    config: str | LabelConfig, prediction: Mapping[str, Any] | Prediction
) -> list[Problem]:
    """Check one prediction (`{"result": [...], "score": ..., "model_version": ...}` or a
    `Prediction`).

    `config` is the labeling config string (parsed once and cached) or a `LabelConfig`.
    """
    if isinstance(prediction, Prediction):
        prediction = {"result": prediction.result, "score": prediction.score}
    if not is_mapping(prediction):
        return [Problem("bad-shape", f"a prediction must be a dict, got {type(prediction)}")]
    problems: list[Problem] = []
    score = prediction.get("score")
    if score is not None and not finite(score):
        problems.append(Problem("bad-score", f"score must be a finite number, got {score!r}"))
    elif score is not None and not 0 <= score <= 1:
        problems.append(Problem("bad-score", f"score must be between 0 and 1, got {score!r}"))
    result = prediction.get("result")
    if not isinstance(result, list):
        return [*problems, Problem("bad-shape", "'result' must be a list of items")]
    return problems + check_result(config, result)


def check_result(config: str | LabelConfig, result: Sequence[Any]) -> list[Problem]:
    """Check the items of a prediction's `result` list."""
    try:
        parsed = config if isinstance(config, LabelConfig) else parse_label_config(config)
    except (LabelConfigError, TypeError) as error:
        return [Problem("bad-config", f"the label config cannot be read: {error}")]
    ids: dict[str, set[str]] = {}
    for item in result:
        if is_mapping(item) and _is_id(item.get("id")):
            kind = item.get("type")
            ids.setdefault(item["id"], set()).update([kind] if isinstance(kind, str) else [])
    problems: list[Problem] = []
    for index, item in enumerate(result):
        for code, message in _check_item(parsed, item, ids):
            problems.append(Problem(code, message, index))
    return problems


def _check_item(config: LabelConfig, item: Any, ids: Mapping[str, set[str]]) -> Found:
    """The problems of one item; `ids` maps each item id to the types of the items having it."""
    if not is_mapping(item):
        return [("bad-shape", f"an item must be a dict, got {type(item).__name__}")]
    if item.get("type") == "relation":
        return _check_relation(config, item, ids)
    from_name = item.get("from_name")
    control = config.get_control(from_name) if isinstance(from_name, str) else None
    if control is None:
        names = ", ".join(c.name for c in config.controls) or "none"
        return [
            (
                "unknown-from-name",
                f"from_name {from_name!r} is not a control of the label config (controls: "
                f"{names}); the editor drops the item",
            )
        ]
    where = f"{control.tag} {control.name!r}"
    found: Found = []
    to_name = item.get("to_name")
    if to_name not in control.to_names:
        found.append(
            (
                "unknown-to-name",
                f"to_name {to_name!r} is not in the toName of {where} "
                f"({','.join(control.to_names)}); the editor drops the item",
            )
        )
    if "score" in item and not finite(item["score"]):
        found.append(("bad-score", f"score must be a finite number, got {item['score']!r}"))
    tool = _merged_tool(config, control, item.get("type"))
    if tool is not None:
        return found + _check_merged(control, tool, item)
    if item.get("type") != control.type:
        found.append(("wrong-type", f"type {item.get('type')!r} should be {control.type!r}"))
        return found
    value = item.get("value")
    if not is_mapping(value):
        return [*found, ("bad-value", "'value' must be a dict")]
    found += _check_labels(control, value, where)
    obj = config.get_object(to_name) if isinstance(to_name, str) else None
    base = control.type.removesuffix("labels")
    if base in IMAGE_TYPES and (obj is None or obj.type == "image"):
        found += check_image(base, item, value)
    if control.type == "labels" and obj is not None and obj.type in ("image", "video"):
        found += _check_split_labels(item, value, ids)
    found += check_value(control, value, where, obj.type if obj else None)
    return found


def _merged_tool(config: LabelConfig, control: ControlTag, kind: Any) -> ControlTag | None:
    """For a `Labels` item of type `<tool>labels` (`rectanglelabels`, `videorectanglelabels`):
    the tool on the same object it merges with (Label Studio's merged format), else None."""
    if control.type != "labels" or not isinstance(kind, str) or not kind.endswith("labels"):
        return None
    targets = set(control.to_names)
    return next(
        (
            c
            for c in config.controls
            if c.type == kind.removesuffix("labels") and targets & set(c.to_names)
        ),
        None,
    )


def _check_merged(control: ControlTag, tool: ControlTag, item: Mapping[str, Any]) -> Found:
    """A region drawn with `tool` and labelled with the `Labels` `control`, as one item: the
    labels under `value[type]` (or `value.labels`), the geometry as the tool's."""
    value = item.get("value")
    if not is_mapping(value):
        return [("bad-value", "'value' must be a dict")]
    key = item["type"] if item["type"] in value else "labels"
    labels = value.get(key)
    if not (strings(labels) and labels):
        return [("bad-value", f"value.{key} must be a non-empty list of labels")]
    found: Found = [
        ("unknown-label", f"label {label!r} is not in {control.tag} {control.name!r}")
        for label in labels
        if label not in control.label_set  # Label Studio's validator wants them listed
    ]
    if tool.type in IMAGE_TYPES:
        found += check_image(tool.type, item, value)
    elif tool.type == "videorectangle":
        found += check_value(tool, value, f"{tool.tag} {tool.name!r}", "video")
    return found


def _check_split_labels(
    item: Mapping[str, Any], value: Mapping[str, Any], ids: Mapping[str, set[str]]
) -> Found:
    """`Labels` on an image or a video: the labels of a region drawn with another control (a
    `Rectangle`, ...) that shares its id (Label Studio's split format), else a span."""
    partners = ids.get(item["id"], set()) if _is_id(item.get("id")) else set()
    geometry = next((t for t in IMAGE_TYPES if t in partners), None)
    if geometry is None:
        return check_span("labels", value)
    return check_image(geometry, item, value, sized=False)


def _check_labels(control: ControlTag, value: Mapping[str, Any], where: str) -> Found:
    key = control.type
    if not (key.endswith("labels") or key in ("choices", "taxonomy")):
        return []
    labels = value.get(key)
    if key == "taxonomy":
        if not isinstance(labels, list) or not all(strings(p) and p for p in labels):
            return [("bad-value", "value.taxonomy must be a list of paths (lists of strings)")]
        if control.dynamic_labels or control.attrs.get("apiUrl"):
            return []
        return [
            ("unknown-label", f"{' / '.join(p)} is not a path of {where}")
            for p in labels
            if not _in_taxonomy(control.labels, p)
        ]
    if not strings(labels):
        return [("bad-value", f"value.{key} must be a list of label strings")]
    found: Found = []
    if key == "choices" and not control.multiple and len(labels) > 1:
        found.append(("bad-value", f"{where} allows one choice, got {len(labels)}"))
    if not control.dynamic_labels:
        known = control.label_set
        for label in labels:
            if label not in known:
                found.append(
                    (
                        "unknown-label",
                        f"label {label!r} is not in {where} "
                        f"(labels: {', '.join(control.label_names) or 'none'})",
                    )
                )
    return found


def _in_taxonomy(level: tuple[Label, ...], path: list[str]) -> bool:
    for name in path:
        node = next((label for label in level if label.name == name), None)
        if node is None:
            return False
        level = node.children
    return True


def _check_relation(
    config: LabelConfig, item: Mapping[str, Any], ids: Mapping[str, set[str]]
) -> Found:
    found: Found = []
    for key in ("from_id", "to_id"):
        if not (_is_id(item.get(key)) and item[key] in ids):
            found.append(("bad-relation", f"{key} {item.get(key)!r} is not the id of an item"))
    labels = item.get("labels", [])
    if not strings(labels):
        found.append(("bad-relation", "a relation's labels must be a list of strings"))
    else:
        known = {label.name for label in config.relation_labels}
        found += [
            ("unknown-label", f"relation label {label!r} is not in <Relations>")
            for label in labels
            if label not in known
        ]
    if item.get("direction") not in _DIRECTIONS:
        found.append(
            (
                "bad-relation",
                "direction must be 'right' (an arrow from from_id to to_id), 'left' or 'bi', "
                f"got {item.get('direction')!r}",
            )
        )
    return found


def _is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str)
