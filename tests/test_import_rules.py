"""The import rules of docs/architecture.md, held against the code.

The table under "What may import what" gives every module and package of `relaxml` a layer; a
module may import its own layer and the layers below it, never one above. Type-only imports
count too. A new module fails here until the table places it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "relaxml"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
NEVER_EACH_OTHER = (
    {"relaxml._delivery", "relaxml._training"},
    {"relaxml.labels", "relaxml.labelstudio"},
)


def layers() -> dict[str, int]:
    """`{"relaxml.labels": 3, ...}` from the table's rows `| 3 | name | `a`, `b` | ... |`."""
    text = ARCHITECTURE.read_text().split("## What may import what", 1)[1].split("\n## ", 1)[0]
    found: dict[str, int] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].isdigit():
            for name in re.findall(r"`([\w.]+)`", cells[2]):
                found[name] = int(cells[0])
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str, table: dict[str, int]) -> tuple[str, int] | None:
    if module == "relaxml":
        return ("relaxml", table["relaxml"]) if "relaxml" in table else None
    parts = module.split(".")
    for end in range(len(parts), 1, -1):
        prefix = ".".join(parts[:end])
        if prefix in table:
            return prefix, table[prefix]
    return None


def imports(module: str, source: str, *, is_package: bool = False) -> set[str]:
    """Every relaxml module that `source` (the code of `module`) imports, relative resolved."""
    package = module if is_package else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import x` may name a module
                candidate = f"{target}.{alias.name}"
                as_path = ROOT / candidate.replace(".", "/")
                is_module = as_path.with_suffix(".py").is_file() or as_path.is_dir()
                found.add(candidate if is_module else target)
    return {name for name in found if name == "relaxml" or name.startswith("relaxml.")}


def violations(module: str, source: str, table: dict[str, int], *, is_package: bool = False):
    """What `module` imports against the rules, one line each."""
    here = layer_of(module, table)
    assert here is not None, f"{module} has no layer in docs/architecture.md"
    wrong = []
    for target in sorted(imports(module, source, is_package=is_package)):
        there = layer_of(target, table)
        assert there is not None, f"{module} imports {target}, which has no layer"
        if there[1] > here[1]:
            wrong.append(f"{module} (layer {here[1]}) imports {target} (layer {there[1]})")
        if {here[0], there[0]} in NEVER_EACH_OTHER:
            wrong.append(f"{module} imports {target}: these two never import each other")
    return wrong


def test_the_table_places_every_module_and_names_only_real_ones():
    table = layers()
    assert len(set(table.values())) >= 5, "the layer table in docs/architecture.md is missing"
    for path in sorted(PACKAGE.rglob("*.py")):
        assert layer_of(module_name(path), table), (
            f"{module_name(path)} has no layer in docs/architecture.md"
        )
    for name in table:
        as_path = ROOT / name.replace(".", "/")
        assert as_path.with_suffix(".py").is_file() or as_path.is_dir(), f"no module {name}"


def test_no_module_imports_a_layer_above_its_own():
    table = layers()
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        is_package = path.name == "__init__.py"
        wrong += violations(module_name(path), path.read_text(), table, is_package=is_package)
    assert not wrong, "\n".join(wrong)


def test_the_rules_catch_an_upward_import_even_a_type_only_one():
    table = layers()
    upward = (
        "from typing import TYPE_CHECKING\n"
        "from ..prediction import Prediction\n"
        "if TYPE_CHECKING:\n"
        "    from .._server.backend import Backend\n"
    )
    assert violations("relaxml.labels.results", upward, table) == [
        "relaxml.labels.results (layer 3) imports relaxml._server.backend (layer 7)"
    ]
    sideways = "from .._training import keeper\n"
    assert violations("relaxml._delivery.worker", sideways, table) == [
        "relaxml._delivery.worker imports relaxml._training.keeper: these two never import "
        "each other"
    ]
    assert violations("relaxml.labels.results", "from ..labelstudio import client\n", table)
    assert violations("relaxml.model", "from ._server import app\n", table)
