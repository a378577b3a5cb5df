"""Fixtures for the Ray tests: one local Ray for the whole session, fractional CPUs.

`RELAXML_RAY` controls what happens when Ray is not installed (`pip install -e '.[ray]'`):
unset (or `auto`) skips these tests, `require` (as in CI) fails them, `skip` skips them.
Every test under this directory is marked `ray` (`pytest -m "not ray"` leaves them out).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

RAY_DIR = Path(__file__).resolve().parent
RAY_MODES = ("auto", "skip", "require")

# Logical CPUs of the session's Ray: more than this machine's cores, so that actors asking
# for fractions of a CPU can be placed beside the tasks that feed them.
SESSION_CPUS = 4


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under this directory `ray` (before `-m` selection runs)."""
    for item in items:
        if RAY_DIR in item.path.resolve().parents:
            item.add_marker(pytest.mark.ray)


def ray_mode() -> str:
    """Return the `RELAXML_RAY` mode: `auto` (default), `skip` or `require`."""
    mode = os.environ.get("RELAXML_RAY", "").strip().lower() or "auto"
    if mode not in RAY_MODES:
        raise pytest.UsageError(f"RELAXML_RAY must be one of {', '.join(RAY_MODES)}, not {mode!r}")
    return mode


def require_ray() -> None:
    """Skip (or, with RELAXML_RAY=require, fail) when Ray is unavailable."""
    mode = ray_mode()
    if mode == "skip":
        pytest.skip("RELAXML_RAY=skip")
    if importlib.util.find_spec("ray") is None:
        reason = "Ray is not installed: pip install -e '.[ray]'"
        if mode == "require":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local Ray for the session (never a stale cluster found on the machine), shut down after."""
    require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    ray.init(
        address="local",
        num_cpus=SESSION_CPUS,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture
def ray_dir() -> Iterator[Path]:
    """A short directory for the files of a child command's own Ray (`RAY_TMPDIR`): its socket
    paths must stay under 107 bytes, which a test's `tmp_path` can exceed."""
    path = Path(tempfile.mkdtemp(prefix="relaxml-ray-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
