"""Test helpers live in one place, tests/support/, and the benchmarks use that one copy."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
SUITE_FILES = {"__init__.py", "conftest.py"}


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_test_directories_hold_only_tests_and_their_conftest():
    strays = [
        str(path.relative_to(ROOT))
        for folder in (TESTS, TESTS / "e2e")
        for path in sorted(folder.glob("*.py"))
        if path.name not in SUITE_FILES and not path.name.startswith("test_")
    ]
    assert strays == [], "helpers belong in tests/support/"


def test_the_support_package_holds_no_tests():
    support = TESTS / "support"
    assert (support / "__init__.py").is_file()
    assert [p.name for p in support.glob("test_*.py")] == []
    assert not (support / "conftest.py").exists()


def test_bench_imports_test_helpers_only_from_tests_support():
    outside = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in sorted((ROOT / "bench").glob("*.py"))
        for name in _imported_modules(path)
        if name.split(".")[0] == "tests" and not name.startswith("tests.support")
    }
    assert outside == set()
