"""Write a new backend project: a template's model, config, tasks and tests, plus the files
every project gets (Dockerfile, compose file, README, pyproject.toml, dotfiles)."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    if sys.version_info >= (3, 11):
        from importlib.resources.abc import Traversable
    else:
        from importlib.abc import Traversable

TEMPLATES = ("blank", "image-detection", "text-classification", "ner", "interactive")

# Where each template file goes in the project; `.tmpl` files get the placeholders filled.
_LAYOUT = {
    "model.py.tmpl": "model.py",
    "label_config.xml": "label_config.xml",
    "tasks.json": "tasks.json",
    "requirements.txt": "requirements.txt",
    "test_model.py.tmpl": "tests/test_model.py",
}
_COMMON = {
    "Dockerfile.tmpl": "Dockerfile",
    "docker-compose.yml.tmpl": "docker-compose.yml",
    "README.md.tmpl": "README.md",
    "pyproject.toml.tmpl": "pyproject.toml",
    "dockerignore": ".dockerignore",
    "gitattributes": ".gitattributes",
    "gitignore": ".gitignore",
}


class ScaffoldError(Exception):
    """The project cannot be written; the message says why."""


@dataclass(frozen=True)
class Names:
    """The names a project is written with."""

    name: str  # as given: the directory's name
    slug: str  # lower-case, dashes: versions, image names
    class_name: str  # CamelCase: the model class

    @classmethod
    def of(cls, name: str) -> Names:
        words = re.findall(r"[A-Za-z0-9]+", name)
        if not words or not words[0][0].isalpha():
            raise ScaffoldError(
                f"{name!r} cannot name a project: use letters, digits, '-' or '_', "
                "starting with a letter"
            )
        slug = "-".join(w.lower() for w in words)
        class_name = "".join(w[:1].upper() + w[1:] for w in words)
        return cls(name, slug, class_name)


def create_project(directory: Path, template: str) -> list[Path]:
    """Write the project into `directory` (new, or empty); the files written, in order."""
    if template not in TEMPLATES:
        raise ScaffoldError(f"no template {template!r}: choose one of {', '.join(TEMPLATES)}")
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ScaffoldError(f"{directory} already exists and is not empty: choose a new name")
    names = Names.of(directory.name)
    root = resources.files(__package__).joinpath("templates")
    sources = [(root / template / src, dst) for src, dst in _LAYOUT.items()]
    sources += [(root / "common" / src, dst) for src, dst in _COMMON.items()]
    written = []
    for source, target in sources:
        path = directory / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(source, names, template), encoding="utf-8", newline="\n")
        written.append(path)
    wheels = directory / "wheels" / "README.md"
    wheels.parent.mkdir()
    wheels.write_text(
        "Put relaxml's wheel here for the container build:\n"
        "`pip wheel --no-deps -w wheels <path to the relaxml clone>`\n",
        encoding="utf-8",
        newline="\n",
    )
    return [*written, wheels]


def _fill(source: Traversable, names: Names, template: str) -> str:
    text = str(source.read_text(encoding="utf-8"))
    if not source.name.endswith(".tmpl"):
        return text
    for key, value in {
        "name": names.name,
        "slug": names.slug,
        "class_name": names.class_name,
        "template": template,
    }.items():
        text = text.replace("{{" + key + "}}", value)
    return text
