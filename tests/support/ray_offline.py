"""Models and helpers of the offline Ray tests: written to a file the actors import by path."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from relaxml.cli import main

from .model_files import PRELUDE

ROOT = Path(__file__).resolve().parents[2]

MODELS = (
    PRELUDE
    + '''
class Sized(LabelStudioModel):
    """Names the size of the call each task came in (so chunks must match the local engine's),
    says "maybe" (not in the config) to a text ending in 000, nothing to one ending in 7."""
    model_version = "s-1"
    max_batch_size = 16
    def predict(self, tasks, context):
        return [
            None if t.data["text"].endswith("7")
            else choice("maybe" if t.data["text"].endswith("000") else "positive",
                        score=len(tasks) / 100)
            for t in tasks
        ]

class OutOfMemoryError(RuntimeError):
    """Looks like torch's, without torch."""

OutOfMemoryError.__module__ = "torch.cuda"

class Raising(LabelStudioModel):
    """Raises on a call holding a task whose text starts with "bad", runs out of memory on one
    starting with "huge"; positive for the rest."""
    model_version = "r-1"
    max_batch_size = 8
    def predict(self, tasks, context):
        texts = [t.data["text"] for t in tasks]
        if any(text.startswith("bad") for text in texts):
            raise ValueError(f"cannot read {[t for t in texts if t.startswith('bad')][0]}")
        if any(text.startswith("huge") for text in texts):
            raise OutOfMemoryError("CUDA out of memory")
        return [choice("positive", score=len(tasks) / 10) for t in tasks]
'''
)


def write_models(directory: Path) -> Path:
    """The models file in `directory`; its path."""
    path = directory / "ray_models.py"
    path.write_text(MODELS)
    return path


def invoke(*args: str | Path, env: dict[str, str] | None = None) -> Any:
    """`relaxml ARGS` in this process (on the session's Ray, for `--engine ray`)."""
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def command(*args: str | Path) -> list[str]:
    """`relaxml ARGS` as a command line for a child process."""
    return [sys.executable, "-m", "relaxml", *[str(a) for a in args]]


def child_env(ray_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a child `relaxml`: this checkout first on the path, its Ray's files
    under `ray_dir` (so its processes can be told from any other Ray's on the machine)."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "RAY_TMPDIR": str(ray_dir)}
    env.update(RAY_USAGE_STATS_ENABLED="0", **extra)
    env.pop("RAY_ADDRESS", None)
    return env


def ray_processes(ray_dir: Path) -> list[str]:
    """The processes of the Ray whose files are under `ray_dir` (and of its reaper), by their
    environment (`RAY_TMPDIR`): Ray's workers and agents rename themselves (`ray::IDLE`)."""
    wanted = f"RAY_TMPDIR={ray_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if wanted in (entry / "environ").read_bytes().split(b"\0"):
                environ = (entry / "environ").read_bytes()
                marked = b"RELAXML_RAY_OWNER=" in environ
                title = (entry / "cmdline").read_bytes()[:80].rstrip(b"\0")
                found.append(f"{entry.name} {title!r} (marked: {marked})")
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found
