"""The model as a data directory serves it: its current version loaded, as the server does."""

from __future__ import annotations

from pathlib import Path

from .._datadir.sqlite import FILENAME
from .._training.modelstate import has_state, load_state
from .._training.versions import VersionRecord, VersionStore
from ..model import LabelStudioModel


class CurrentVersionError(Exception):
    """The data directory's current version cannot be loaded: the message says why."""


def load_current(model: LabelStudioModel, data_dir: Path, project_id: int) -> str:
    """Load the current version of `data_dir` (the project's own, for a per-project model)
    into `model`, with its `load` or its pickled state, and set its `model_version`; the
    version. A data directory with no version leaves the model as built."""
    current, record = _current(type(model), data_dir, project_id)
    if current is None or record is None or (current == model.model_version and not record.path):
        return model.model_version
    cls = type(model)
    path = Path(record.path) if record.path else None
    if path is None or not (cls.loads() or has_state(path)):
        raise CurrentVersionError(
            f"the current version {current} cannot be loaded: "
            + (f"{cls.__name__} has no load()" if path else "it has no saved artifacts")
        )
    if cls.loads():
        model.load(path)
    else:
        load_state(model, path)
    model.model_version = current
    return current


def stored_version(
    model_class: type[LabelStudioModel], data_dir: Path, project_id: int
) -> str | None:
    """The current version of `data_dir` (the project's own, for a per-project model), which
    `load_current` would load; None when it has none."""
    return _current(model_class, data_dir, project_id)[0]


def _current(
    model_class: type[LabelStudioModel], data_dir: Path, project_id: int
) -> tuple[str | None, VersionRecord | None]:
    database = data_dir / FILENAME
    if not database.is_file():
        raise CurrentVersionError(f"{data_dir} holds no relaxml database ({FILENAME}).")
    owner = VersionStore(database)
    try:
        store = owner.for_project(str(project_id)) if model_class.per_project else owner
        current = store.current()
        return current, store.get(current) if current else None
    finally:
        owner.close()
