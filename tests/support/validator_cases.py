"""Predictions to hold `check_prediction` against Label Studio's own validator: for every control
of a labeling config, a valid item and a set of wrong ones, each case named by its kind
(`rectanglelabels/rotation-over-360`).

`read_templates` reads the configs of the templates Label Studio bundles
(`annotation_templates/<group>/<name>/config.yml`) without a YAML parser: each file holds its
config as one literal block (`config: |`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from relaxml.labels import ControlTag, LabelConfig, parse_label_config
from relaxml.labels.rle import mask_to_rle

from .validator_mutations import CHANGES, Change, drop_value, set_value

Case = dict[str, Any]
Item = dict[str, Any]

EXTRA = """<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <EllipseLabels name="cells" toName="image"><Label value="Cell"/></EllipseLabels>
  <Ellipse name="ellipse" toName="image"/>
  <KeyPoint name="point" toName="image"/>
  <Brush name="brush" toName="image"/>
  <Number name="count" toName="text" min="0" max="10"/>
  <DateTime name="when" toName="text" only="date"/>
  <Labels name="entities" toName="text"><Label value="PER"/></Labels>
  <Relations><Relation value="knows"/></Relations>
</View>
"""
"""Controls no bundled template has (ellipses, keypoints, a brush, Number, DateTime)."""

_SIDE = 10
_IMAGE = {"original_width": _SIDE, "original_height": _SIDE, "image_rotation": 0}
_GEOMETRY: dict[str, dict[str, Any]] = {
    "rectangle": {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0},
    "polygon": {"points": [[10, 10], [30, 10], [20, 30]], "closed": True},
    "keypoint": {"x": 10, "y": 10, "width": 1},
    "ellipse": {"x": 50, "y": 50, "radiusX": 10, "radiusY": 20, "rotation": 0},
    "brush": {"format": "rle", "rle": mask_to_rle([[255] * _SIDE] * _SIDE)},
}


def read_templates(root: Path) -> dict[str, str]:
    """`group/name` → the labeling config of each bundled template under `root`."""
    found: dict[str, str] = {}
    for path in sorted(root.glob("*/*/config.yml")):
        raw = path.read_text(encoding="utf-8")
        lines = raw.splitlines()
        block: list[str] = []
        for line in lines[lines.index("config: |") + 1 :]:
            if line.strip() and not line.startswith(" "):
                break
            block.append(line)
        indent = min(len(line) - len(line.lstrip(" ")) for line in block if line.strip())
        text = "\n".join(line[indent:] for line in block).rstrip("\n")
        # `|` keeps the last line break, if the file has one after the last line
        at_end = block[-1] == lines[-1] and block[-1].strip()
        text += "" if at_end and not raw.endswith("\n") else "\n"
        found[str(path.parent.relative_to(root))] = text
    return found


def cases(configs: dict[str, str]) -> list[Case]:
    """Every case for every config: `{"kind", "config" (its name), "prediction"}`."""
    out: list[Case] = []
    for name, config in configs.items():
        parsed = parse_label_config(config)
        regions: list[Item] = []
        for control in parsed.controls:
            items = valid_items(parsed, control)
            regions.extend(items)
            for kind, result in [*_wrong(control, items), *_merged(parsed, control)]:
                prediction = {"result": result, "score": 0.5}
                out.append(
                    {"kind": f"{control.type}/{kind}", "config": name, "prediction": prediction}
                )
        out.extend(
            {"kind": kind, "config": name, "prediction": prediction}
            for kind, prediction in _whole(regions)
        )
    return out


def valid_items(config: LabelConfig, control: ControlTag) -> list[Item]:
    """Items Label Studio takes for `control`: one, or for `Labels` on an image, the region
    drawn with a sibling tool and its labels (the split format)."""
    target = control.to_name
    obj = config.get_object(target)
    object_type = obj.type if obj else None
    labels = list(control.label_names[:1]) or ["anything"]
    kind = control.type
    base = kind.removesuffix("labels")
    value: dict[str, Any]
    extra: dict[str, Any] = {}
    if base in _GEOMETRY and object_type == "image":
        value, extra = copy.deepcopy(_GEOMETRY[base]), dict(_IMAGE)
    elif kind == "labels" and object_type == "image":
        tool = next(
            c for c in config.controls_for(target) if c.type.removesuffix("labels") in _GEOMETRY
        )
        geometry = valid_items(config, tool)[0]
        partner = {**geometry, "id": f"{control.name}-region"}
        labelled = _item(control, {**geometry["value"], "labels": labels}, **_IMAGE)
        labelled["id"] = partner["id"]
        return [labelled, partner]
    elif kind in ("labels", "paragraphlabels", "hypertextlabels", "timeserieslabels"):
        value = _span(kind, object_type)
    else:
        value = _VALUES.get(kind, lambda c: {})(control)
    if kind.endswith("labels") or kind == "choices":
        value[kind] = labels
    if kind == "taxonomy":
        value["taxonomy"] = [labels]
    return [_item(control, value, **extra)]


def _item(control: ControlTag, value: dict[str, Any], **extra: Any) -> Item:
    return {
        "id": control.name,
        "from_name": control.name,
        "to_name": control.to_name,
        "type": control.type,
        "value": value,
        **extra,
    }


def _span(kind: str, object_type: str | None) -> dict[str, Any]:
    if object_type == "hypertext" or kind == "hypertextlabels":
        return {
            "start": "/p[1]/text()[1]",
            "end": "/p[1]/text()[1]",
            "startOffset": 0,
            "endOffset": 3,
            "text": "abc",
        }
    if kind == "paragraphlabels" or object_type == "paragraphs":
        return {"start": "0", "end": "0", "startOffset": 0, "endOffset": 3, "text": "abc"}
    if kind == "timeserieslabels":
        return {"start": 1, "end": 5, "instant": False}
    if object_type in ("audio", "audioplus", "video"):
        return {"start": 0.5, "end": 1.5}
    return {"start": 0, "end": 3, "text": "abc"}


_VALUES: dict[str, Callable[[ControlTag], dict[str, Any]]] = {
    "textarea": lambda c: {"text": ["hello"]},
    "number": lambda c: {"number": 1},
    "rating": lambda c: {"rating": 1},
    "datetime": lambda c: {"datetime": "2024-01-01"},
    "pairwise": lambda c: {"selected": "left"},
    "ranker": lambda c: {"ranker": {c.name: ["a", "b"]}},
    "timelinelabels": lambda c: {"ranges": [{"start": 1, "end": 5}]},
    "ocrlabels": lambda c: {"x": 10, "y": 10, "width": 20, "height": 20, "rotation": 0},
    "videorectangle": lambda c: {
        "framesCount": 100,
        "duration": 4.0,
        "sequence": [
            {
                "frame": 1,
                "time": 0.04,
                "x": 10,
                "y": 10,
                "width": 20,
                "height": 20,
                "rotation": 0,
                "enabled": True,
            }
        ],
    },
    "chat": lambda c: {"chatmessage": {"role": "user", "content": "hello"}},
    "chatmessage": lambda c: {"chatmessage": {"role": "user", "content": "hi", "createdAt": 1}},
}


def _wrong(control: ControlTag, items: list[Item]) -> Iterator[tuple[str, list[Item]]]:
    """The valid items, then each mutation of the control's own item."""
    yield "valid", items
    mutations: dict[str, Change] = {
        "unknown-from-name": lambda item: item.update(from_name="no_such_control"),
        "unknown-to-name": lambda item: item.update(to_name="no_such_object"),
        "wrong-type": lambda item: item.update(type="nosuchtype"),
        "type-in-capitals": lambda item: item.update(type=item["type"].upper()),
        "value-not-a-dict": lambda item: item.update(value=["x"]),
        "value-missing": lambda item: item.pop("value"),
    }
    key = control.type if control.type in ("choices", "taxonomy") else None
    key = control.type if control.type.endswith("labels") else key
    if key is not None and items[0]["value"].get(key) is not None:
        mutations["labels-missing"] = drop_value(key)
        mutations["labels-a-string"] = set_value(key, "x")
        if control.labels and not control.dynamic_labels:
            unknown = [["NoSuchLabel"]] if key == "taxonomy" else ["NoSuchLabel"]
            mutations["unknown-label"] = set_value(key, unknown)
    if "original_width" in items[0]:
        mutations["original-size-missing"] = lambda item: item.pop("original_width")
    if key == "choices" and not control.multiple and len(control.labels) > 1:
        mutations["two-choices-for-single"] = set_value(key, list(control.label_names[:2]))
    if control.type == "pairwise":
        mutations["selected-neither-side"] = set_value("selected", "middle")
    mutations.update(CHANGES.get(control.type.removesuffix("labels"), {}))
    for kind, change in mutations.items():
        changed = copy.deepcopy(items)
        change(changed[0])
        yield kind, changed


def _merged(config: LabelConfig, control: ControlTag) -> Iterator[tuple[str, list[Item]]]:
    """`Labels` and a tool on the same object, as one item of type `<tool>labels` (the merged
    format): valid, and wrong in its labels or its geometry."""
    if control.type != "labels":
        return
    for tool in config.controls:
        if tool.type not in (*_GEOMETRY, "videorectangle") or not set(tool.to_names) & set(
            control.to_names
        ):
            continue
        region = valid_items(config, tool)[0]
        kind = f"{tool.type}labels"
        labels = list(control.label_names[:1])
        merged = {**region, "from_name": control.name, "type": kind}
        changes: dict[str, dict[str, Any]] = {
            "valid": {kind: labels},
            "labels-under-labels": {"labels": labels},
            "unknown-label": {kind: ["NoSuchLabel"]},
            "labels-missing": {},
            "labels-empty": {kind: []},
        }
        if tool.type == "rectangle":
            changes["width-over-100"] = {kind: labels, "width": 150}
        if tool.type == "videorectangle":
            changes["frames-count-missing"] = {kind: labels, "framesCount": None}
        for name, fields in changes.items():
            value = {**region["value"], **fields}
            value = {k: v for k, v in value.items() if v is not None}
            yield f"merged-{kind}/{name}", [{**merged, "value": value}]


def _whole(regions: list[Item]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Prediction scores and relations, over the config's valid regions."""
    if not regions:
        return
    for kind, score in (
        ("valid", 1),
        ("over-1", 1.5),
        ("negative", -0.1),
        ("just-over-1", 1.0000001),
        ("a-word", "high"),
    ):
        yield f"score/{kind}", {"result": regions, "score": score}
    ids = (regions[0]["id"], regions[-1]["id"])
    relations = {
        "valid": {"direction": "right"},
        "direction-bi": {"direction": "bi"},
        "direction-missing": {},
        "direction-up": {"direction": "up"},
        "unknown-from-id": {"direction": "left", "from_id": "no_such_region"},
        "unknown-label": {"direction": "right", "labels": ["no_such_relation"]},
        "to-id-missing": {"direction": "left", "to_id": None},
    }
    for kind, fields in relations.items():
        relation = {"type": "relation", "from_id": ids[0], "to_id": ids[1], **fields}
        relation = {k: v for k, v in relation.items() if v is not None}
        yield f"relation/{kind}", {"result": [*regions, relation], "score": 0.5}
