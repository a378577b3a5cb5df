"""The prompts of an interactive call, typed: what the annotator just drew with a smart tool.

Label Studio sends the regions in `params.context.result`, serialized as it stores results
(percent of the image). `parse_prompts` turns each into a `Prompt`: its kind, whether it is
positive or negative, its label, its control and object, and its geometry in pixels of the
original image, with the percent values and the raw item kept. See docs/interactive.md.

A prompt is negative when the editor says so (`"is_positive": false`, which Label Studio's
smart keypoint sets on an Alt-click) or when its label is marked negative in the config:
`negative="true"` on the `<Label>`, or an alias that is a negative whole number (`alias="-1"`,
the convention of the advanced SAM configs of HumanSignal's examples).

An item that cannot be read (not an object, an unknown type, a missing or non-numeric
coordinate, no image size) never fails the call: it goes to `Prompts.unparsed` with the reason,
and the raw list stays in `context.interactive`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._promptitems import PromptKind, Unreadable, read_item
from .labelconfig import LabelConfig, LabelConfigError, parse_label_config
from .rle import rle_to_array, rle_to_mask
from .tags import Label

__all__ = [
    "Prompt",
    "PromptKind",
    "Prompts",
    "UnparsedPrompt",
    "is_negative_label",
    "parse_prompts",
]


@dataclass(frozen=True)
class Prompt:
    """One region the annotator drew with a smart tool (or one text prompt).

    Pixel geometry is in pixels of the original image (`image_size`), floats, (0, 0) the
    top-left corner; which fields are set depends on `kind`:

    - `point`: `point` (x, y);
    - `box`: `box` (x0, y0, x1, y1, the corners before rotation) and `rotation` (degrees,
      clockwise about the top-left corner, as Label Studio turns rectangles);
    - `ellipse`: `point` (the centre), `radii` (rx, ry) and `rotation`;
    - `polygon`: `points`, the vertices in order;
    - `brush`: `rle`, the stroke as Label Studio's brush RLE; `mask()` decodes it;
    - `text`: `text`, the lines joined by newlines (`texts` keeps them apart);
    - `span`: `span` (start, end), character offsets in the task's text (end exclusive), and
      `text`, the selected characters when the editor sent them (a `Labels` region on a
      `Text`: an annotator labelled one mention, for a model to label the others).

    `value` is the item's `value` as sent, in percent; `raw` the whole item.
    """

    kind: PromptKind
    positive: bool
    label: str | None
    from_name: str
    to_name: str
    raw: Mapping[str, Any] = field(repr=False, hash=False)
    labels: tuple[str, ...] = ()
    image_size: tuple[int, int] | None = None
    point: tuple[float, float] | None = None
    box: tuple[float, float, float, float] | None = None
    radii: tuple[float, float] | None = None
    rotation: float = 0.0
    points: tuple[tuple[float, float], ...] = ()
    rle: tuple[int, ...] | None = field(default=None, repr=False)
    texts: tuple[str, ...] = ()
    span: tuple[int, int] | None = None

    @property
    def negative(self) -> bool:
        """The opposite of `positive`: "not here" (a SAM point label 0)."""
        return not self.positive

    @property
    def id(self) -> str | None:
        """The region id the editor gave the item, if any."""
        value = self.raw.get("id")
        return value if isinstance(value, str) else None

    @property
    def type(self) -> str:
        """The item's result `type`, e.g. `keypointlabels`."""
        return str(self.raw.get("type", ""))

    @property
    def value(self) -> Mapping[str, Any]:
        """The item's `value` as Label Studio sent it: coordinates in percent."""
        value = self.raw.get("value")
        return value if isinstance(value, Mapping) else {}

    @property
    def text(self) -> str | None:
        """A text prompt's text (its lines joined by newlines), a span's selected text; None
        for other kinds."""
        return "\n".join(self.texts) if self.kind in ("text", "span") and self.texts else None

    def mask(self) -> list[list[int]]:
        """A brush prompt's stroke as `height` rows of `width` alpha values (0..255)."""
        width, height = self._brush_size()
        return rle_to_mask(self.rle or (), width, height)

    def mask_array(self) -> Any:
        """A brush prompt's stroke as a NumPy bool array of shape (height, width). Needs numpy."""
        width, height = self._brush_size()
        return rle_to_array(self.rle or (), width, height)[:, :, 3] > 0

    def _brush_size(self) -> tuple[int, int]:
        if self.kind != "brush" or self.image_size is None:
            raise ValueError(f"a {self.kind} prompt has no mask")
        return self.image_size


@dataclass(frozen=True)
class UnparsedPrompt:
    """An item of `params.context.result` that is not a readable prompt, and why."""

    raw: Any
    reason: str


class Prompts(tuple[Prompt, ...]):
    """The prompts of a call, in the order the editor sent them: a tuple of `Prompt`s.

    `unparsed` holds the items that could not be read. Empty for a call that is not
    interactive.
    """

    unparsed: tuple[UnparsedPrompt, ...]

    def __new__(
        cls, prompts: Sequence[Prompt] = (), unparsed: Sequence[UnparsedPrompt] = ()
    ) -> Prompts:
        """The `prompts`, with the `unparsed` items beside them."""
        made = super().__new__(cls, prompts)
        made.unparsed = tuple(unparsed)
        return made

    def of_kind(self, *kinds: PromptKind) -> Prompts:
        """The prompts of these kinds, in order."""
        return Prompts([p for p in self if p.kind in kinds], self.unparsed)

    @property
    def positive(self) -> Prompts:
        """The positive prompts, in order."""
        return Prompts([p for p in self if p.positive], self.unparsed)

    @property
    def negative(self) -> Prompts:
        """The negative prompts, in order."""
        return Prompts([p for p in self if not p.positive], self.unparsed)

    @property
    def label(self) -> str | None:
        """The label of the last prompt that has one: the class the annotator is working on."""
        for prompt in reversed(self):
            if prompt.label is not None and prompt.positive:
                return prompt.label
        return next((p.label for p in reversed(self) if p.label is not None), None)


def is_negative_label(label: Label) -> bool:
    """Whether a config marks `label` negative: `negative="true"`, or an alias that is a
    negative whole number (`alias="-1"`)."""
    if label.attrs.get("negative", "").strip().lower() in ("true", "1", "yes"):
        return True
    alias = (label.alias or "").strip()
    return alias.startswith("-") and alias[1:].isdigit()


def parse_prompts(
    context: Mapping[str, Any] | None, label_config: str | LabelConfig | None = None
) -> Prompts:
    """The prompts in an interactive call's `params.context` (`{"result": [...]}`).

    `label_config` (the XML or a parsed config) tells which labels are negative; without it,
    or when it does not parse, only `is_positive` does. Never raises for bad items.
    """
    if not isinstance(context, Mapping):
        return Prompts()
    items = context.get("result")
    if not isinstance(items, list):
        reason = "params.context.result is not a list"
        return Prompts((), [UnparsedPrompt(items, reason)] if items is not None else [])
    config = _config(label_config)

    def negative(from_name: str, label: str) -> bool:
        return config is not None and _marked_negative(config, from_name, label)

    prompts: list[Prompt] = []
    unparsed: list[UnparsedPrompt] = []
    for item in items:
        try:
            prompts.append(Prompt(**read_item(item, negative)))
        except Unreadable as why:
            unparsed.append(UnparsedPrompt(item, str(why)))
    return Prompts(prompts, unparsed)


def _config(label_config: str | LabelConfig | None) -> LabelConfig | None:
    if isinstance(label_config, LabelConfig):
        return label_config
    if not label_config:
        return None
    try:
        return parse_label_config(label_config)
    except LabelConfigError:
        return None


def _marked_negative(config: LabelConfig, from_name: str, label: str) -> bool:
    control = config.get_control(from_name)
    if control is None:
        return False
    return any(is_negative_label(known) for known in control.all_labels() if label == known.name)
