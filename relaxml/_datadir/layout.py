"""The data directory's checks at startup: usable, not corrupt, and owned by one model.

A data directory holds one model's queue, jobs and versions. On first use the model's identity
(`module:QualName` of its class) is written to `model.json`; a different model on the same
directory is refused, because it would run the other's training with its own `fit` and deliver
the other's jobs under its own version. Directories from before this check adopt the first
model that starts on them.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .sqlite import FILENAME

IDENTITY_FILE = "model.json"
_LOADER_PREFIX = "relaxml_target_"


class DataDirError(Exception):
    """The data directory cannot be used; the message (one line) names the path.

    `usage` is True when the fix is a different option (another model's directory).
    """

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage


@dataclass(frozen=True)
class DataDir:
    """A checked data directory: its absolute path and whether this start created it."""

    path: Path
    new: bool


def model_identity(cls: type) -> str:
    """`module:QualName` of a model class, the same across restarts and worker processes."""
    module = cls.__module__
    if module.startswith(_LOADER_PREFIX):
        module = module[len(_LOADER_PREFIX) :]
    if module == "__main__":
        with contextlib.suppress(TypeError, OSError):
            module = Path(inspect.getfile(cls)).stem
    return f"{module}:{cls.__qualname__}"


def prepare(path: Path, identity: str) -> DataDir:
    """Create or check the data directory for the model `identity`; `DataDirError` if unusable."""
    path = path.expanduser().resolve()
    database = path / FILENAME
    new = not database.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-check-"):
            pass
    except OSError as exc:
        raise DataDirError(
            f"data directory {path} is not a writable directory ({exc.strerror or exc}); "
            "fix its permissions or choose another with --data-dir / RELAXML_DATA_DIR"
        ) from None
    if not new:
        _check_database(database)
    _claim(path, identity)
    return DataDir(path, new)


def _check_database(database: Path) -> None:
    try:
        connection = sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)
        try:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise DataDirError(
            f"database {database} cannot be read ({exc}); move it away to start afresh, "
            "or restore it from a backup"
        ) from None


def _claim(path: Path, identity: str) -> None:
    marker = path / IDENTITY_FILE
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("model")
    except FileNotFoundError:
        recorded = None
    except (OSError, ValueError, AttributeError) as exc:
        raise DataDirError(
            f"{marker} cannot be read ({exc}); delete it if {path} belongs to {identity}"
        ) from None
    if recorded is None:
        staging = marker.with_name(f".{IDENTITY_FILE}.{os.getpid()}")
        try:
            staging.write_text(json.dumps({"model": identity}) + "\n", encoding="utf-8")
            staging.replace(marker)
        except OSError as exc:
            raise DataDirError(f"cannot write {marker} ({exc.strerror or exc})") from None
        return
    if recorded != identity:
        raise DataDirError(
            f"data directory {path} belongs to model {recorded}, not {identity}: give this model "
            "its own directory with --data-dir or RELAXML_DATA_DIR (or delete "
            f"{path} if {recorded} is gone for good)",
            usage=True,
        )


def describe_start(data_dir: DataDir) -> str:
    """The startup log line's words for the data directory."""
    return f"data directory {data_dir.path} ({'new' if data_dir.new else 'existing'})"
