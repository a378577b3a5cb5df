"""A trained model's state with pickle, for models that implement `fit` but not `save`/`load`.

After such a `fit` returns a new version, the instance's attributes (its `__dict__` without
relaxml's own `_relaxml*` attributes, or whatever its `__getstate__` returns) are pickled into
`<data_dir>/versions/<version>/state.pickle`. Other workers, restarts and rollbacks construct the
class and restore that state (`__setstate__` when the class defines it). An attribute that
cannot be pickled fails the training run with a message naming it; serving goes on.

The file is loaded with pickle: anyone who can write the data directory can run code in the
server, which is already true of the model's own code and artifacts there.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from ..errors import describe
from ..model import LabelStudioModel

STATE_FILE = "state.pickle"
_PRIVATE = "_relaxml"


class StateError(ValueError):
    """The model's state cannot be pickled; the message names the attribute."""


def _custom(cls: type, name: str) -> bool:
    return getattr(cls, name, None) is not getattr(object, name, None)


def save_state(model: LabelStudioModel, path: Path) -> None:
    """Pickle `model`'s state into `path/state.pickle` (`path` exists and is empty)."""
    cls = type(model)
    state: Any
    if _custom(cls, "__getstate__"):
        state = model.__getstate__()  # type: ignore[attr-defined]
        if isinstance(state, dict):
            state = {k: v for k, v in state.items() if not str(k).startswith(_PRIVATE)}
    else:
        state = {k: v for k, v in vars(model).items() if not k.startswith(_PRIVATE)}
    try:
        data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:
        raise StateError(_culprit(cls, state, exc)) from None
    (path / STATE_FILE).write_bytes(data)


def _culprit(cls: type, state: Any, exc: Exception) -> str:
    fix = "implement save() and load(), or leave it out of __getstate__()"
    if isinstance(state, dict):
        for name, value in state.items():
            try:
                pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as inner:
                return (
                    f"{cls.__name__}.{name} ({type(value).__name__}) cannot be pickled, so the "
                    f"trained model cannot be saved for other workers and restarts: "
                    f"{describe(inner)}; {fix}"
                )
    return f"{cls.__name__}'s state cannot be pickled: {describe(exc)}; {fix}"


def has_state(path: Path) -> bool:
    """True when `path` holds a pickled state."""
    return (path / STATE_FILE).is_file()


def load_state(model: LabelStudioModel, path: Path) -> None:
    """Restore the state `save_state` wrote into `path` onto `model` (a fresh instance)."""
    state = pickle.loads((path / STATE_FILE).read_bytes())  # our own data directory
    if _custom(type(model), "__setstate__"):
        model.__setstate__(state)  # type: ignore[attr-defined]
    else:
        model.__dict__.update(state)
