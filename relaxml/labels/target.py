"""`find_target`: the control a model predicts for, the object it labels, and the data key.

Every model starts the same way: find the `<Choices>` on the `<Text>` (or the
`<RectangleLabels>` on the `<Image>`, ...) of the project's config, whatever their names, and
read the task-data key of the object. `find_target(config, "Choices", "Text")` does it once,
with an error that says what to add when the config has no such pair.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .labelconfig import LabelConfig, parse_label_config
from .tags import ControlTag, ObjectTag


class NoTargetError(ValueError):
    """The label config has no control of the kind a model predicts on an object it reads."""


@dataclass(frozen=True)
class Target:
    """A control and the object it labels, from a parsed config.

    `from_name`, `to_name` and `data_key` are what results and tasks name; `labels` are the
    control's labels as results store them (empty when they come from task data).
    """

    config: LabelConfig
    control: ControlTag
    object: ObjectTag

    @property
    def from_name(self) -> str:
        """The control's name: a result's `from_name`."""
        return self.control.name

    @property
    def to_name(self) -> str:
        """The object's name: a result's `to_name`."""
        return self.object.name

    @property
    def data_key(self) -> str:
        """The task-data key the object reads (`image` for `value="$image"`)."""
        return self.object.value_key or ""

    @property
    def labels(self) -> tuple[str, ...]:
        """The control's labels as results store them; empty for labels from task data."""
        return () if self.control.dynamic_labels else self.control.label_names

    def results_in(self, annotations: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The result items of this control in `annotations` (each `{"result": [...]}`, as
        `event.training_tasks()` gives them), in order: what annotators said with it."""
        return [
            item
            for annotation in annotations
            for item in annotation.get("result") or []
            if isinstance(item, dict)
            and item.get("from_name") == self.from_name
            and isinstance(item.get("value"), dict)
        ]


def find_target(
    config: str | LabelConfig,
    control_type: str | Sequence[str],
    object_type: str | Sequence[str],
    *,
    with_labels: bool = False,
    to_name: str | None = None,
) -> Target:
    """The first control of `control_type` (a tag such as `"Choices"`, or several) on an object
    of `object_type` (`"Text"`, or several) that reads a task-data key; with `with_labels`, the
    first such control that has labels of its own; with `to_name`, one on the object of that
    name (the image an interactive prompt was drawn on).

    Raises `NoTargetError` (a ValueError) naming the tags to add when there is none.
    """
    parsed = config if isinstance(config, LabelConfig) else parse_label_config(config)
    controls = (control_type,) if isinstance(control_type, str) else tuple(control_type)
    objects = (object_type,) if isinstance(object_type, str) else tuple(object_type)
    wanted = {name.lower() for name in objects}
    for control in parsed.controls_of_type(*controls):
        if with_labels and (control.dynamic_labels or not control.label_names):
            continue
        for obj in parsed.objects_for(control):
            if obj.type in wanted and obj.value_key and to_name in (None, obj.name):
                return Target(parsed, control, obj)
    kinds = " or ".join(f"<{c}>" for c in controls)
    where = " or ".join(f"<{o}>" for o in objects)
    where = f"the {where} {to_name!r}" if to_name else f"a {where}"
    labelled = " with labels" if with_labels else ""
    raise NoTargetError(
        f"the label config has no {kinds}{labelled} on {where} that reads task data "
        f'(value="$key"): add one to use this model'
    )
