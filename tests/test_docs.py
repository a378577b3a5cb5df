"""The docs name every setting, option and route the code has, and link every page."""

from __future__ import annotations

import re
from pathlib import Path

from relaxml import Settings, create_app
from relaxml.cli import serve

from .support.models import Echo

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    for name, env, _default, _doc in Settings.describe():
        assert f"`{name}`" in text, name
        assert f"`{env}`" in text, env


def test_every_cli_option_is_documented():
    text = (DOCS / "cli.md").read_text()
    for param in serve.params:
        for opt in getattr(param, "opts", []):
            if opt.startswith("--"):
                assert f"`{opt}`" in text, opt
        if getattr(param, "envvar", None):
            assert f"`{param.envvar}`" in text, param.envvar


def test_every_route_is_documented():
    text = (DOCS / "routes.md").read_text()
    for route in create_app(Echo).routes:
        assert f"{route.path}`" in text, route.path  # type: ignore[attr-defined]


def test_every_page_is_linked_from_the_index():
    index = (DOCS / "index.md").read_text()
    for page in DOCS.glob("*.md"):
        if page.name != "index.md":
            assert f"({page.name})" in index, page.name


def test_relative_links_resolve():
    for page in [*DOCS.glob("*.md"), DOCS.parent / "README.md"]:
        for target in re.findall(r"\]\(([^)#:]+\.md)\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} -> {target}"
