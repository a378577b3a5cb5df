"""Shared fixtures for the examples' own tests (`examples/<name>/tests/`).

Each example lists what it needs beyond relaxml in its `requirements.txt`. An example whose
requirements are not installed is not collected: its tests are reported as skipped at the end of
the run, with the command that installs them. `RELAXML_EXAMPLES=require` (CI sets it) makes a
missing requirement an error instead, so CI never passes by skipping an example.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from starlette.testclient import TestClient

from relaxml import LabelStudioModel
from relaxml.testing import serve as serve_model

EXAMPLES = Path(__file__).resolve().parent
MODES = ("auto", "require")


def unmet_requirements(example: Path) -> list[str]:
    """The lines of `example/requirements.txt` that the running environment does not satisfy."""
    path = example / "requirements.txt"
    if not path.is_file():
        return []
    unmet = []
    for line in path.read_text().splitlines():
        line = re.sub(r"\s+#.*", "", line).strip()
        if not line or line.startswith(("#", "-")):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            unmet.append(line)
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        try:
            version = importlib.metadata.version(requirement.name)
        except importlib.metadata.PackageNotFoundError:
            unmet.append(line)
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            unmet.append(f"{line} (installed: {version})")
    return unmet


def examples_mode() -> str:
    mode = os.environ.get("RELAXML_EXAMPLES", "").strip().lower() or "auto"
    if mode not in MODES:
        raise pytest.UsageError(f"RELAXML_EXAMPLES must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


UNMET = {
    example.name: unmet
    for example in sorted(EXAMPLES.iterdir())
    if example.is_dir() and (unmet := unmet_requirements(example))
}
collect_ignore = list(UNMET)


def pytest_configure(config: pytest.Config) -> None:
    if UNMET and examples_mode() == "require":
        lines = [f"  examples/{name}: {', '.join(unmet)}" for name, unmet in UNMET.items()]
        raise pytest.UsageError(
            "RELAXML_EXAMPLES=require, but these examples' requirements are not installed:\n"
            + "\n".join(lines)
            + "\ninstall them with: pip install -r examples/<name>/requirements.txt"
        )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name, unmet in UNMET.items():
        terminalreporter.write_line(
            f"SKIPPED examples/{name}: not installed: {', '.join(unmet)} "
            f"(pip install -r examples/{name}/requirements.txt)",
            yellow=True,
        )


@pytest.fixture
def serve() -> Iterator[Any]:
    """Serve a model class in-process (lifespan included) and return a `TestClient` for it:
    `relaxml.testing.serve`, kept open until the test ends.

    `serve(Model, **settings)`: settings are `relaxml.Settings` fields; each app gets a fresh
    data directory unless `data_dir` is given.
    """
    with ExitStack() as stack:

        def start(model: type[LabelStudioModel], **settings: Any) -> TestClient:
            return stack.enter_context(serve_model(model, **settings)).client

        yield start


def wait_for(predicate: Any, timeout: float = 30.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)
