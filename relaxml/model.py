"""`LabelStudioModel`: the class users subclass. It knows nothing about HTTP."""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ._devices import default_device
from .prediction import TaskOutput

if TYPE_CHECKING:
    from .context import Context
    from .events import TrainingEvent
    from .projects import Project
    from .protocol import Task


class LabelStudioModel(abc.ABC):
    """The base class of every relaxml model.

    Subclass it, load your weights in `__init__` (relaxml constructs the class once per
    process, when the server starts), and implement `predict`. Implement `fit` to train.

    Class attributes you may set:

    - `model_version`: a non-empty string sent to Label Studio with `/setup` and with every
      prediction. Defaults to the class name. Label Studio skips tasks that already have a
      prediction of the current version, so change it when the model changes. A subclass
      that sets none inherits an explicit version, or else gets its own class name.
    - `max_batch_size`: the most tasks one `predict` call receives; larger requests are split
      into chunks. None (the default) passes every task of a request in one call.
    - `batch_timeout`: seconds a small request may wait for others to share one `predict`
      call (micro-batching, up to `max_batch_size` tasks, 64 when unset). None (default): off.
    - `delivery`: `"auto"` (default), `"inline"` or `"background"`: how predictions reach
      Label Studio (docs/delivery.md). `RELAXML_DELIVERY` overrides it per deployment.
    - `memo_entries`, `memo_bytes`: the bounds of `context.memo`, the values of expensive
      per-task work kept between calls (16 entries, 1 GiB by default; docs/interactive.md).
    - `oom_errors`: exception classes that mean `predict` ran out of memory, beside torch's
      `OutOfMemoryError` (always recognized). A call that raises one is retried on each half
      of its tasks, down to one task (docs/concurrency.md, "Out of memory").
    - `per_project`: True keeps one instance per Label Studio project, each trained and
      versioned on its own (docs/projects.md). False (default): one instance serves every
      project.

    `self.device` is already set when `__init__` runs: the device this worker process should
    use (`RELAXML_DEVICES`, one per worker, round-robin), e.g. `"cuda:1"`; see `device`.
    `warmup()` runs once after construction, before the worker is ready.
    """

    model_version: str = ""
    max_batch_size: ClassVar[int | None] = None
    batch_timeout: ClassVar[float | None] = None
    delivery: ClassVar[str] = "auto"
    memo_entries: ClassVar[int] = 16
    memo_bytes: ClassVar[int] = 1 << 30
    per_project: ClassVar[bool] = False
    """One instance per Label Studio project, each with its own versions (docs/projects.md)."""
    oom_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """Exception classes that mean out of memory, beside torch's `OutOfMemoryError`."""

    _derived_version: ClassVar[bool] = True
    _relaxml_sender: Callable[[Mapping[int, TaskOutput], Project | int], str] | None = None
    """Set by the server on the instance it serves; `send_predictions` goes through it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("model_version"):
            cls._derived_version = False
        elif cls._derived_version:
            cls.model_version = cls.__name__

    @property
    def device(self) -> str:
        """The device this worker's model should use, e.g. `"cuda:1"`, `"cuda"` or `"cpu"`.

        Set by relaxml before `__init__` runs: with `RELAXML_DEVICES` (`--devices`), each worker
        process gets one of its entries, round-robin; without it, `"cuda"` when torch is
        installed and reports a GPU, else `"cpu"`. An instance built outside relaxml gets that
        same guess. Assign it to choose another.
        """
        chosen: str | None = self.__dict__.get("_relaxml_device")
        return default_device() if chosen is None else chosen

    @device.setter
    def device(self, value: str) -> None:
        self.__dict__["_relaxml_device"] = value

    def warmup(self) -> None:  # noqa: B027 - an optional hook
        """Called once after construction (and after loading the current version), before the
        worker answers `/ready` or predicts. Optional.

        Run a dummy prediction here so the first real request does not pay for lazy
        initialisation (CUDA kernels, caches). An exception fails the startup: the process
        exits non-zero, as when `__init__` raises. Also called on a fresh instance before it
        replaces the served one (a new version); if it raises there, the old one keeps serving.
        """

    def setup(self, project: Project) -> None:  # noqa: B027 - an optional hook
        """Called when a project is first seen or its settings change. Keep it cheap.

        Label Studio calls `/setup` before every prediction batch with a 3 s timeout: never
        load weights here. The default does nothing.
        """

    @abc.abstractmethod
    def predict(
        self, tasks: list[Task], context: Context
    ) -> Sequence[TaskOutput] | Awaitable[Sequence[TaskOutput]]:
        """Return one entry per task, in order.

        An entry is a `relaxml.Prediction`, a dict with `result` (and optionally `score` and
        `model_version`), a list of those for several predictions of one task, or None when
        the model has nothing to say about the task. May be `async def`.
        """

    def fit(self, event: TrainingEvent) -> str | None:
        """Train on a Label Studio event. Runs in the background, never in the request.

        Return the new model version to make it current (relaxml then calls `save` and every
        worker serves it), or None to keep the current one. `event.annotated_tasks()` fetches
        the project's training data; `event.should_stop()` tells of a cancel. The default is
        not to train: events are acknowledged and ignored.
        """
        raise NotImplementedError

    def save(self, path: Path) -> None:
        """Write the current model's artifacts into the empty directory `path`. Optional.

        relaxml calls it after `fit` returns a new version, with
        `<data_dir>/versions/<version>/`. Implement it together with `load` so that restarts,
        other workers (`--workers N`) and rollbacks can serve trained versions. Without either,
        relaxml pickles the instance's attributes instead (see `pickles_state`).
        """
        raise NotImplementedError

    def load(self, path: Path) -> None:
        """Restore the model from artifacts `save` wrote into `path`. Optional.

        relaxml calls it on a freshly constructed instance (or, at startup, on the instance
        being started) and then swaps that instance in; requests in flight finish on the old one.
        """
        raise NotImplementedError

    @classmethod
    def saves(cls) -> bool:
        """True when the class overrides `save`."""
        return cls.save is not LabelStudioModel.save

    @classmethod
    def loads(cls) -> bool:
        """True when the class overrides `load`."""
        return cls.load is not LabelStudioModel.load

    def send_predictions(
        self, predictions: Mapping[int, TaskOutput], *, project: Project | int
    ) -> str:
        """Queue predictions (task id → entry, as `predict` returns them) for delivery.

        They go to Label Studio through its API in the background, durably, like background
        jobs; returns the job id. Works only while the model is served by relaxml.
        """
        if self._relaxml_sender is None:
            raise RuntimeError("send_predictions works only while relaxml serves the model")
        return self._relaxml_sender(predictions, project)

    @classmethod
    def pickles_state(cls) -> bool:
        """True when relaxml persists trained versions with pickle: `fit` without `save`/`load`.

        The instance's attributes (minus relaxml's own) are pickled after `fit` and restored on
        a fresh instance by other workers, restarts and rollbacks. Define `__getstate__` and
        `__setstate__` to choose what is kept, or implement `save` and `load` instead.
        """
        return cls.trains() and not cls.saves() and not cls.loads()

    @classmethod
    def trains(cls) -> bool:
        """True when the class overrides `fit`."""
        return cls.fit is not LabelStudioModel.fit

    @classmethod
    def predicts_async(cls) -> bool:
        """True when `predict` is a coroutine function."""
        return inspect.iscoroutinefunction(cls.predict)


DELIVERY_MODES = ("auto", "inline", "background")


def construct(cls: type[LabelStudioModel], device: str) -> LabelStudioModel:
    """An instance of `cls` whose `device` is already `device` when its `__init__` runs."""
    instance = cls.__new__(cls)
    instance.device = device
    instance.__init__()  # type: ignore[misc]
    return instance


def check_attributes(model: type[LabelStudioModel] | LabelStudioModel) -> None:
    """Refuse bad class attributes before serving: a `TypeError` or `ValueError` naming
    `Class.attribute` and what it must be."""
    name = model.__name__ if isinstance(model, type) else type(model).__name__
    version = model.model_version
    if not isinstance(version, str) or not version.strip():
        raise TypeError(f"{name}.model_version must be a non-empty string, got {version!r}")
    size = model.max_batch_size
    if size is not None:
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError(f"{name}.max_batch_size must be an integer or None, got {size!r}")
        if size < 1:
            raise ValueError(f"{name}.max_batch_size must be at least 1 (or None), got {size!r}")
    timeout = model.batch_timeout
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(
                f"{name}.batch_timeout must be a number of seconds or None, got {timeout!r}"
            )
        if not math.isfinite(timeout) or timeout <= 0:
            raise ValueError(
                f"{name}.batch_timeout must be a finite number of seconds above 0 (or None), "
                f"got {timeout!r}"
            )
    for attribute in ("memo_entries", "memo_bytes"):
        bound = getattr(model, attribute)
        if isinstance(bound, bool) or not isinstance(bound, int) or bound < 0:
            raise ValueError(f"{name}.{attribute} must be an integer of at least 0, got {bound!r}")
    oom = model.oom_errors
    if not isinstance(oom, tuple) or not all(
        isinstance(cls, type) and issubclass(cls, BaseException) for cls in oom
    ):
        raise TypeError(f"{name}.oom_errors must be a tuple of exception classes, got {oom!r}")
    if not isinstance(model.per_project, bool):
        raise TypeError(f"{name}.per_project must be True or False, got {model.per_project!r}")
    if model.delivery not in DELIVERY_MODES:
        raise ValueError(
            f"{name}.delivery must be 'auto', 'inline' or 'background', got {model.delivery!r}"
        )
