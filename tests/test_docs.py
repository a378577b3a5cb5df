"""The docs name every setting, option and route the code has, and link every page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from relaxml import Settings, create_app
from relaxml.cli import main

from .support.models import Echo

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    for name, env, _default, _doc in Settings.describe():
        assert f"`{name}`" in text, name
        assert f"`{env}`" in text, env


def commands(group: click.Group, prefix: str = "relaxml") -> Iterator[tuple[str, click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix} {name}")
        else:
            yield f"{prefix} {name}", command


def test_every_cli_command_and_option_is_documented():
    text = (DOCS / "cli.md").read_text()
    found = dict(commands(main))
    assert {"relaxml serve", "relaxml predict", "relaxml check"} <= found.keys()
    for name, command in found.items():
        assert f"{name} " in text, name
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help":
                    assert f"`{opt}`" in text, f"{name} {opt}"
            if getattr(param, "envvar", None):
                assert f"`{param.envvar}`" in text, param.envvar


def test_cli_md_names_no_option_the_commands_lack():
    """The reverse check: an option renamed or removed in the code goes from the docs too."""
    known = {opt for param in main.params for opt in getattr(param, "opts", [])}
    for _name, command in commands(main):
        known.update(opt for param in command.params for opt in getattr(param, "opts", []))
    documented = set(re.findall(r"`(--[\w-]+)`", (DOCS / "cli.md").read_text()))
    assert documented, "cli.md names no option"
    assert documented <= known | {"--help"}, documented - known


def test_every_route_is_documented():
    text = (DOCS / "routes.md").read_text()
    for route in create_app(Echo).routes:
        assert f"{route.path}`" in text, route.path  # type: ignore[attr-defined]


def test_every_page_is_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, page.name


def test_the_site_nav_follows_the_index():
    """mkdocs.yml's nav lists the index, then every page in the order of the index's table."""
    config = (DOCS.parent / "mkdocs.yml").read_text()
    nav = re.findall(r"^  - (?:[^:\n]+: )?([\w-]+\.md)$", config.split("\nnav:\n")[1], re.M)
    table = re.findall(r"^\| \[([\w-]+\.md)\]\(", (DOCS / "index.md").read_text(), re.M)
    assert nav == ["index.md", *table]


def test_relative_links_resolve():
    """Every relative link leads to a file of the repository, with or without an anchor.

    The site build (mkdocs.yml) checks anchors, and leaves links to files outside docs/ to
    this test.
    """
    seen = 0
    for page in [*DOCS.glob("*.md"), DOCS.parent / "README.md"]:
        for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)\s]*)?\)", page.read_text()):
            assert (page.parent / target).exists(), f"{page.name} -> {target}"
            seen += 1
    assert seen > 100


IMPORT = re.compile(r"^from (relaxml[\w.]*) import (\([^)]*\)|[^\n]+)", re.M)


def test_the_docs_import_only_public_names_and_every_one_exists():
    """A user following the docs never imports a private module, and every import works."""
    import importlib

    pages = [*DOCS.glob("*.md"), DOCS.parent / "README.md", *DOCS.parent.glob("examples/**/*.md")]
    seen = 0
    for page in pages:
        for module_name, names in IMPORT.findall(page.read_text()):
            where = f"{page.name}: from {module_name} import ..."
            assert not any(part.startswith("_") for part in module_name.split(".")), where
            module = importlib.import_module(module_name)
            for item in names.strip("()").split(","):
                name = item.split(" as ")[0].strip()
                if name and not name.startswith("#"):
                    assert hasattr(module, name), f"{where} {name}"
            seen += 1
    assert seen > 10


RUNNABLE = re.compile(r"^<!-- runnable -->\n```python\n(.*?)^```$", re.M | re.S)


def runnable_blocks() -> list[tuple[str, str, str]]:
    """(where, page, code) for every Python block of docs/ marked `<!-- runnable -->` on the line
    before its fence; the code is padded with blank lines so that a traceback's line numbers
    are the page's."""
    blocks = []
    for page in sorted(DOCS.glob("*.md")):
        text = page.read_text()
        for match in RUNNABLE.finditer(text):
            line = text.count("\n", 0, match.start(1)) + 1
            blocks.append((f"{page.name}:{line}", page.name, "\n" * (line - 1) + match.group(1)))
    return blocks


def test_runnable_blocks_are_marked_as_documented():
    """The marker sits right before a ```python fence; a misplaced one would be skipped."""
    for page in DOCS.glob("*.md"):
        text = page.read_text()
        markers = re.findall(r"^<!-- runnable -->$", text, re.M)
        assert len(markers) == len(RUNNABLE.findall(text)), page.name
    assert len(runnable_blocks()) >= 20


@pytest.mark.parametrize(
    ("page", "code"), [pytest.param(*b[1:], id=b[0]) for b in runnable_blocks()]
)
def test_a_runnable_block_runs(page: str, code: str, tmp_path: Path, monkeypatch) -> None:
    """Each marked block runs as shown, alone, in a fresh namespace and an empty directory."""
    monkeypatch.chdir(tmp_path)
    exec(compile(code, page, "exec"), {"__name__": "__docs__"})
