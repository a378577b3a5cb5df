"""The typed tags of a labeling config: `ControlTag`, `ObjectTag` and their `Label`s.

Instances are immutable (attributes are read-only mappings) because parsed configs are cached
and shared between requests. `relaxml.labels.labelconfig` builds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property

__all__ = ["ControlTag", "Label", "ObjectTag", "match_label"]


@dataclass(frozen=True)
class Label:
    """One `<Label>` or `<Choice>` of a control (for a `Taxonomy`, a node with `children`)."""

    value: str
    attrs: Mapping[str, str]
    line: int
    children: tuple[Label, ...] = ()

    @property
    def alias(self) -> str | None:
        """The `alias` attribute: when set, results store it instead of `value`."""
        return self.attrs.get("alias")

    @property
    def name(self) -> str:
        """What results store for this label: the alias if there is one, else the value."""
        return self.alias or self.value

    @property
    def predicted_values(self) -> tuple[str, ...]:
        """Model class names mapped to this label (`predicted_values="car,truck"`)."""
        raw = self.attrs.get("predicted_values", "")
        return tuple(part.strip() for part in raw.split(",") if part.strip())

    @property
    def background(self) -> str | None:
        """The label's colour (`background`), if set."""
        return self.attrs.get("background")

    @property
    def hotkey(self) -> str | None:
        """The label's keyboard shortcut (`hotkey`), if set."""
        return self.attrs.get("hotkey")

    @property
    def selected(self) -> bool:
        """Whether the label is preselected (`selected="true"`)."""
        return self.attrs.get("selected", "").lower() == "true"


@dataclass(frozen=True)
class ObjectTag:
    """A tag showing task data, such as `<Image name="image" value="$image"/>`."""

    name: str
    tag: str
    attrs: Mapping[str, str]
    line: int
    channels: tuple[str, ...] = ()
    """For a `TimeSeries`: the `column` of each `<Channel>`."""

    @property
    def type(self) -> str:
        """The lower-cased tag, e.g. `image`, `text`, `hypertext`, `audio`, `timeseries`."""
        return self.tag.lower()

    @property
    def value(self) -> str | None:
        """The raw `value` (or `valueList`) attribute, e.g. `$image`."""
        return self.attrs.get("value", self.attrs.get("valueList"))

    @property
    def value_key(self) -> str | None:
        """The task data key the tag reads (`image` for `value="$image"`), or None."""
        value = self.value
        return value[1:] if value and value.startswith("$") else None


ModelParam = str | int | float | bool
"""A `model_*` attribute's value, typed (`ControlTag.model_params`)."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)([eE][+-]?[0-9]+)?")


def typed_param(value: str) -> ModelParam:
    """An attribute's text as a bool, int, float or the string itself."""
    text = value.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return value


@dataclass(frozen=True)
class ControlTag:
    """A tag annotators (and models) produce results with, such as `<RectangleLabels>`."""

    name: str
    tag: str
    to_names: tuple[str, ...]
    labels: tuple[Label, ...]
    attrs: Mapping[str, str]
    line: int
    result_type: str | None = None
    """The result `type` when it is not the lower-cased tag: `chatmessage` for a `<Chat>` that
    labels itself (no `toName`)."""

    @cached_property
    def type(self) -> str:
        """The result `type` of this control: its lower-cased tag, e.g. `rectanglelabels`
        (`result_type` when set)."""
        return self.result_type or self.tag.lower()

    @property
    def to_name(self) -> str:
        """The first (usually the only) object this control labels."""
        return self.to_names[0]

    @property
    def dynamic_labels(self) -> bool:
        """Whether labels come from task data (`value="$options"`), so any label may appear."""
        return self.attrs.get("value", "").startswith("$")

    @property
    def choice(self) -> str:
        """The `choice` attribute: `single` (default), `single-radio` or `multiple`."""
        return self.attrs.get("choice", "single")

    @property
    def multiple(self) -> bool:
        """Whether several labels may be chosen at once (`choice="multiple"`)."""
        return self.choice == "multiple"

    @property
    def smart(self) -> bool:
        """Whether the control is a smart (interactive) tool (`smart="true"`)."""
        return self.attrs.get("smart", "").lower() == "true"

    @property
    def per_region(self) -> bool:
        """Whether the control labels regions rather than the whole task (`perRegion`)."""
        return self.attrs.get("perRegion", "").lower() == "true"

    @cached_property
    def model_params(self) -> Mapping[str, ModelParam]:
        """The control's `model_*` attributes, typed, without the prefix: settings a project
        gives the model in its label config (`<RectangleLabels model_path="yolo-s.pt"
        model_score_threshold="0.4" model_skip="false">` → `{"path": "yolo-s.pt",
        "score_threshold": 0.4, "skip": False}`). `true`/`false` (any case) are booleans,
        integers and decimal numbers are numbers, anything else the string as written."""
        return {
            name[len("model_") :]: typed_param(value)
            for name, value in self.attrs.items()
            if name.startswith("model_") and len(name) > len("model_")
        }

    @cached_property
    def label_names(self) -> tuple[str, ...]:
        """What results may store for this control's labels (every node, for a taxonomy)."""
        return tuple(label.name for label in self.all_labels())

    @cached_property
    def label_set(self) -> frozenset[str]:
        """`label_names` as a set, for membership tests."""
        return frozenset(self.label_names)

    def all_labels(self) -> Iterator[Label]:
        """Every label, depth first (taxonomy nodes included)."""
        stack = list(reversed(self.labels))
        while stack:
            label = stack.pop()
            yield label
            stack.extend(reversed(label.children))

    def taxonomy_paths(self) -> tuple[tuple[str, ...], ...]:
        """Every path from a root to a node of a taxonomy, e.g. `("Eukarya", "Human")`."""
        paths: list[tuple[str, ...]] = []

        def walk(labels: tuple[Label, ...], prefix: tuple[str, ...]) -> None:
            for label in labels:
                path = (*prefix, label.name)
                paths.append(path)
                walk(label.children, path)

        walk(self.labels, ())
        return tuple(paths)

    def match_label(self, name: str) -> Label | None:
        """The label a model's class `name` maps to, or None.

        Tried in order: a label listing `name` in `predicted_values`; a label whose value or
        alias is exactly `name`; then all of these, ignoring case.
        """
        return match_label(self.all_labels(), name)


def match_label(labels: Iterable[Label], name: str) -> Label | None:
    """The label `name` maps to: by `predicted_values`, then exact value or alias, then any case
    (value, alias or predicted value)."""
    candidates = list(labels)
    for label in candidates:
        if name in label.predicted_values:
            return label
    for label in candidates:
        if name in (label.value, label.alias):
            return label
    folded = name.casefold()
    for label in candidates:
        names = (label.value, label.alias or "", *label.predicted_values)
        if folded in (n.casefold() for n in names):
            return label
    return None
