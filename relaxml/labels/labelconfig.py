"""A typed view of a Label Studio labeling config: control tags, object tags and their labels.

`parse_label_config(xml)` returns a `LabelConfig`, cached per config string, so calling it on
every request costs a dictionary lookup. The cache holds at most `CACHE_SIZE` configs and about
`CACHE_BYTES` of memory, least recently used out first.

The rules follow Label Studio's own: a tag with `name` and `toName` is a control (what
annotators produce, e.g. `RectangleLabels`); a tag with `name` and `value` is an object (what is
being labeled, e.g. `Image`); `Label` and `Choice` tags inside a control are its labels, nested
`Choice` tags of a `Taxonomy` form a tree. A `<Chat>` (or `<ReactCode>`) without `toName` is
both: an object, and a control labelling it whose results are of type `chatmessage`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import MappingProxyType

from .._lru import LRU
from ._xmltree import Element, LabelConfigError, parse_xml
from .tags import ControlTag, Label, ObjectTag

__all__ = [
    "ControlTag",
    "Label",
    "LabelConfig",
    "LabelConfigError",
    "ObjectTag",
    "UnknownTagError",
    "parse_label_config",
]

_LABEL_TAGS = frozenset({"Label", "Choice"})
_NOT_CONTROLS = frozenset({"Filter"})
_OBJECT_TYPES = frozenset(
    {
        "audio",
        "audioplus",
        "chat",
        "hypertext",
        "image",
        "list",
        "paragraphs",
        "pdf",
        "table",
        "text",
        "timeseries",
        "video",
    }
)
"""Object tags that stay objects even with a `toName` (a `<Chat>` labels itself)."""

_SELF_LABELLING = {"chat": "chatmessage", "reactcode": "reactcode"}
"""Tags that are their own object and control without a `toName`, and their results' type: a
`<Chat>`'s messages are `chatmessage` results with its name as `from_name` and `to_name`."""

CACHE_SIZE = 128
"""Most parsed label configs kept."""

CACHE_BYTES = 128 * 1024 * 1024
"""About the most memory the parsed configs in the cache may hold, all together. A config over
half of it is parsed on every call instead of kept."""

BYTES_PER_CHAR = 12
"""Memory a parsed config holds per character of its source (measured: about 11)."""


class UnknownTagError(KeyError):
    """A lookup named a tag the config does not have; the message lists the names it has."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class LabelConfig:
    """A parsed labeling config: its controls, objects and relation labels, with lookups.

    Build one with `parse_label_config(xml)`; instances are immutable and shared.
    """

    def __init__(
        self,
        source: str,
        controls: tuple[ControlTag, ...],
        objects: tuple[ObjectTag, ...],
        relation_labels: tuple[Label, ...] = (),
    ) -> None:
        self.source = source
        self.controls = controls
        self.objects = objects
        self.relation_labels = relation_labels
        """The `<Relation>` labels inside `<Relations>`, if any."""
        self._controls = {c.name: c for c in controls}
        self._objects = {o.name: o for o in objects}

    def __repr__(self) -> str:
        controls = ", ".join(f"{c.tag}:{c.name}" for c in self.controls)
        objects = ", ".join(f"{o.tag}:{o.name}" for o in self.objects)
        return f"<LabelConfig controls=[{controls}] objects=[{objects}]>"

    def control(self, name: str) -> ControlTag:
        """The control called `name`; `UnknownTagError` (a KeyError) if there is none."""
        try:
            return self._controls[name]
        except KeyError:
            raise UnknownTagError(
                f"the label config has no control named {name!r}; controls: "
                f"{sorted(self._controls) or 'none'}"
            ) from None

    def object(self, name: str) -> ObjectTag:
        """The object tag called `name`; `UnknownTagError` (a KeyError) if there is none."""
        try:
            return self._objects[name]
        except KeyError:
            raise UnknownTagError(
                f"the label config has no object tag named {name!r}; objects: "
                f"{sorted(self._objects) or 'none'}"
            ) from None

    def get_control(self, name: str) -> ControlTag | None:
        """The control called `name`, or None."""
        return self._controls.get(name)

    def get_object(self, name: str) -> ObjectTag | None:
        """The object tag called `name`, or None."""
        return self._objects.get(name)

    def controls_of_type(self, *types: str) -> list[ControlTag]:
        """The controls whose tag is one of `types` (any case: `"RectangleLabels"`)."""
        wanted = {t.lower() for t in types}
        return [c for c in self.controls if c.type in wanted]

    def objects_of_type(self, *types: str) -> list[ObjectTag]:
        """The object tags whose tag is one of `types` (any case: `"Image"`)."""
        wanted = {t.lower() for t in types}
        return [o for o in self.objects if o.type in wanted]

    def controls_for(self, object_name: str) -> list[ControlTag]:
        """Every control that labels the object called `object_name`."""
        return [c for c in self.controls if object_name in c.to_names]

    def objects_for(self, control: ControlTag | str) -> list[ObjectTag]:
        """The object tags a control labels (its `toName`), in order."""
        tag = self.control(control) if isinstance(control, str) else control
        return [self._objects[n] for n in tag.to_names if n in self._objects]

    def find_control(self, control_type: str, object_type: str | None = None) -> ControlTag | None:
        """The first control of `control_type`, on an object of `object_type` if given.

        `config.find_control("RectangleLabels", "Image")` is the first RectangleLabels on an Image.
        """
        for control in self.controls_of_type(control_type):
            if object_type is None:
                return control
            if any(o.type == object_type.lower() for o in self.objects_for(control)):
                return control
        return None


class _ParseCache:
    """Parsed configs by source, bounded by count and estimated memory. Thread-safe."""

    def __init__(self, size: int, budget: int) -> None:
        self.budget = budget
        self._entries: LRU[str, LabelConfig] = LRU(
            size, budget, lambda xml, _: len(xml) * BYTES_PER_CHAR
        )
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def held(self) -> int:
        """The estimated memory of the parsed configs kept."""
        return self._entries.held

    def get(self, xml: str) -> LabelConfig | None:
        with self._lock:
            return self._entries.get(xml)

    def put(self, xml: str, config: LabelConfig) -> None:
        if len(xml) * BYTES_PER_CHAR > self.budget // 2:
            return
        with self._lock:
            self._entries.put(xml, config)


_cache = _ParseCache(CACHE_SIZE, CACHE_BYTES)


def parse_label_config(xml: str) -> LabelConfig:
    """Parse a labeling config; the result is cached per config string.

    Raises `LabelConfigError` (a ValueError) naming the line for malformed XML, a DTD or entity,
    an oversized config, duplicate tag names, or a `toName` naming no tag.
    """
    found = _cache.get(xml)
    if found is None:
        found = _parse(xml)
        _cache.put(xml, found)
    return found


def _parse(xml: str) -> LabelConfig:
    root = parse_xml(xml)
    controls: list[ControlTag] = []
    objects: list[ObjectTag] = []
    relations: list[Label] = []
    named: dict[str, int] = {}
    for element in _walk(root):
        name = element.attrs.get("name")
        if element.tag == "Relations":
            relations.extend(_labels(element, "Relation"))
        if not name or element.tag in _LABEL_TAGS:
            continue
        if name in named:
            raise LabelConfigError(
                f"the name {name!r} is used twice (first on line {named[name]})", element.line
            )
        named[name] = element.line
        is_control = bool(element.attrs.get("toName")) and element.tag not in _NOT_CONTROLS
        if is_control:
            controls.append(_control(element))
        has_value = "value" in element.attrs or "valueList" in element.attrs
        labels_itself = not is_control and element.tag.lower() in _SELF_LABELLING
        if labels_itself:
            controls.append(_control(element, _SELF_LABELLING[element.tag.lower()]))
        if labels_itself or (
            has_value and (not is_control or element.tag.lower() in _OBJECT_TYPES)
        ):
            objects.append(_object(element))
    for control in controls:
        for target in control.to_names:
            if target not in named:
                raise LabelConfigError(
                    f"{control.tag} {control.name!r} has toName={target!r}, but no tag is named "
                    f"that; names: {sorted(named)}",
                    control.line,
                )
    return LabelConfig(xml, tuple(controls), tuple(objects), tuple(relations))


def _walk(element: Element) -> Iterator[Element]:
    """Every element, depth first, not descending into labels (a taxonomy's tree is theirs)."""
    yield element
    for child in element.children:
        if child.tag not in _LABEL_TAGS:
            yield from _walk(child)


def _control(element: Element, labels_itself: str | None = None) -> ControlTag:
    """A control; `labels_itself` (its results' type) for a tag that is its own object."""
    if labels_itself is None:
        names = tuple(n.strip() for n in element.attrs["toName"].split(",") if n.strip())
    else:
        names = (element.attrs["name"],)
    return ControlTag(
        name=element.attrs["name"],
        tag=element.tag,
        to_names=names,
        labels=tuple(_labels(element, None)),
        attrs=MappingProxyType(dict(element.attrs)),
        line=element.line,
        result_type=labels_itself,
    )


def _object(element: Element) -> ObjectTag:
    channels = tuple(
        c.attrs["column"] for c in element.children if c.tag == "Channel" and "column" in c.attrs
    )
    return ObjectTag(
        name=element.attrs["name"],
        tag=element.tag,
        attrs=MappingProxyType(dict(element.attrs)),
        line=element.line,
        channels=channels,
    )


def _labels(element: Element, only: str | None) -> list[Label]:
    """The label children of a control, looking through layout tags such as `<View>`."""
    found: list[Label] = []
    for child in element.children:
        if child.tag in _LABEL_TAGS or child.tag == only:
            if "value" not in child.attrs:
                raise LabelConfigError(f"a <{child.tag}> has no value attribute", child.line)
            found.append(
                Label(
                    value=child.attrs["value"],
                    attrs=MappingProxyType(dict(child.attrs)),
                    line=child.line,
                    children=tuple(_labels(child, only)),
                )
            )
        elif "toName" not in child.attrs:
            found.extend(_labels(child, only))
    return found
