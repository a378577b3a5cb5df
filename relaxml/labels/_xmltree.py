"""A small, safe XML reader for labeling configs: the standard library's expat, no DTDs.

Labeling configs come from Label Studio projects, so they are parsed defensively: documents with
a DTD (the only way to declare entities, hence entity-expansion bombs and external entities) are
refused, as are oversized documents and absurdly deep nesting. Every element keeps its line
number, so errors can point at the config's own lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

MAX_CONFIG_CHARS = 5_000_000
"""The largest labeling config accepted, in characters (large taxonomies stay far below)."""

MAX_DEPTH = 200
"""The deepest element nesting accepted."""


class LabelConfigError(ValueError):
    """A labeling config that cannot be used; `line` (1-based) and `column` locate it, or None."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        where = ""
        if line is not None:
            where = f"line {line}" + (f", column {column}" if column is not None else "") + ": "
        super().__init__(f"label config {where}{message}")
        self.line = line
        self.column = column


@dataclass
class Element:
    """One XML element: its tag, attributes, children and the line it starts on."""

    tag: str
    attrs: dict[str, str]
    line: int
    children: list[Element] = field(default_factory=list)


def parse_xml(text: str) -> Element:
    """Parse `text` into an `Element` tree, or raise `LabelConfigError` naming the line."""
    if not isinstance(text, str):
        raise LabelConfigError(f"must be a string, got {type(text).__name__}")
    if not text.strip():
        raise LabelConfigError("is empty")
    if len(text) > MAX_CONFIG_CHARS:
        raise LabelConfigError(f"is too large: {len(text)} characters (limit {MAX_CONFIG_CHARS})")
    return _Builder().parse(text)


class _Builder:
    """Expat handlers that build the tree and refuse DTDs, entities and deep nesting."""

    def __init__(self) -> None:
        self.parser = expat.ParserCreate()
        self.parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        self.parser.StartElementHandler = self.start
        self.parser.EndElementHandler = self.end
        self.parser.StartDoctypeDeclHandler = self.doctype
        self.parser.EntityDeclHandler = self.entity
        self.parser.ExternalEntityRefHandler = self.external
        self.stack: list[Element] = []
        self.root: Element | None = None

    def parse(self, text: str) -> Element:
        try:
            self.parser.Parse(text, True)
        except expat.ExpatError as error:
            message = expat.ErrorString(error.code) or str(error)
            raise LabelConfigError(
                f"{message}{_excerpt(text, error.lineno)}", error.lineno, error.offset + 1
            ) from None
        if self.root is None:  # pragma: no cover - expat rejects documents without an element
            raise LabelConfigError("has no root element")
        return self.root

    def _line(self) -> int:
        return int(self.parser.CurrentLineNumber)

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        if len(self.stack) >= MAX_DEPTH:
            raise LabelConfigError(f"nests elements deeper than {MAX_DEPTH} levels", self._line())
        element = Element(tag, dict(attrs), self._line())
        if self.stack:
            self.stack[-1].children.append(element)
        else:
            self.root = element
        self.stack.append(element)

    def end(self, tag: str) -> None:
        self.stack.pop()

    def doctype(self, *args: object) -> None:
        raise LabelConfigError(
            "has a DOCTYPE declaration; DTDs and entities are not allowed", self._line()
        )

    def entity(self, *args: object) -> None:  # pragma: no cover - doctype() refuses first
        raise LabelConfigError("declares an entity; entities are not allowed", self._line())

    def external(self, *args: object) -> int:  # pragma: no cover - doctype() refuses first
        raise LabelConfigError("refers to an external entity; not allowed", self._line())


def _excerpt(text: str, line: int) -> str:
    lines = text.splitlines()
    if 1 <= line <= len(lines):
        snippet = lines[line - 1].strip()
        if snippet:
            return f" (in {snippet[:80]!r})"
    return ""
