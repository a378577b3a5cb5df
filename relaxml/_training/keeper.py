"""`ModelKeeper`: the served model instance and its version, through training, swaps and
rollbacks.

- After a successful `fit` (on the leader), the keeper saves the model's artifacts under
  `<data_dir>/versions/<version>/` (with the model's `save`, or, for a model with neither `save`
  nor `load`, its pickled state: `modelstate.py`) and records the version as current in the
  `VersionStore`. A version that already exists is never overwritten: the new one is recorded
  with a suffix (`v2-2`, `v2-3`, ...) and a warning.
- Every worker watches the store. When the current version differs from the one it serves, it
  builds a fresh instance, has it `load` that version's artifacts, and swaps it in: requests in
  flight finish on the old instance, new ones get the new one. A rollback
  (`relaxml versions use V`) is the same swap.
- At startup, a data directory's current version is loaded before serving, so a restart keeps
  the trained model.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio
import anyio.to_thread

from .._supervise import Supervisor
from ..errors import ModelOutputError, describe
from ..events import TrainingEvent
from ..memo import Memo
from ..model import LabelStudioModel, construct
from .modelstate import has_state, load_state, save_state
from .versions import VersionStore, artifacts_dir

logger = logging.getLogger(__name__)


class ModelKeeper:
    """Holds the current model; applies new versions from training and from the store.

    `adopt` is called with the model each time it starts serving a version: at start, after
    training (the same instance, a new version) and on a swap (a new instance, or the same one
    at startup).
    """

    def __init__(
        self,
        model: LabelStudioModel,
        versions: VersionStore,
        data_dir: Path,
        *,
        adopt: Callable[[LabelStudioModel], None],
    ) -> None:
        self.model = model
        self.versions = versions
        self.data_dir = data_dir
        self.initial_version = model.model_version
        self._adopt = adopt
        self._lock = anyio.Lock()
        self._refused: str | None = None
        self.set_up: LabelStudioModel | None = None
        """The instance `setup(project)` last ran on (a per-project model's; the `Backend`'s)."""
        self.memo: Memo | None = None
        """A per-project instance's own `context.memo` (None: the `Backend`'s)."""
        adopt(model)

    @property
    def name(self) -> str:
        """The model's class name."""
        return type(self.model).__name__

    async def start(self) -> None:
        """Record the initial version; load the data directory's current version if it differs."""
        await anyio.to_thread.run_sync(self.versions.ensure, self.initial_version)
        current = await anyio.to_thread.run_sync(self.versions.current)
        if current is None:
            await anyio.to_thread.run_sync(
                lambda: self.versions.record(self.initial_version, make_current=True)
            )
        elif current != self.model.model_version:
            record = await anyio.to_thread.run_sync(self.versions.get, current)
            if record is not None and record.path is None:
                # Never trained (no artifacts): the version of an earlier build of the model,
                # whose code or weights changed since. The model's own version takes its place.
                await anyio.to_thread.run_sync(self.versions.use, self.initial_version)
                logger.info(
                    "serving %s version %s: the data directory's version %s was never trained",
                    self.name, self.initial_version, current,
                )  # fmt: skip
            else:
                await self.swap(current, fresh=False)

    def fit(self, event: TrainingEvent) -> str | None:
        """Run the model's `fit` (blocking) and check what it returns."""
        version = self.model.fit(event)
        if version is not None and (not isinstance(version, str) or not version):
            raise ModelOutputError(
                f"{self.name}.fit must return a non-empty version string or None, got {version!r}"
            )
        return version

    async def finish(self, version: str, run_id: int, event: TrainingEvent) -> str:
        """Save and record a version `fit` returned; it becomes current everywhere.

        Returns the version as recorded: suffixed when `fit` returned one that already exists.
        """
        async with self._lock:
            version = await anyio.to_thread.run_sync(self._unused, version)
            path: Path | None = None
            if self.model.saves() or self.model.pickles_state():
                path = artifacts_dir(self.data_dir, version)
                await anyio.to_thread.run_sync(self._save, path)
            used = event.control.annotations_used if event.control else 0
            self.model.model_version = version
            self._adopt(self.model)
            await anyio.to_thread.run_sync(
                lambda: self.versions.record(
                    version,
                    run_id=run_id,
                    project=event.project_key,
                    annotations=used or len(event.annotations),
                    path=path,
                )
            )
            return version

    def _unused(self, version: str) -> str:
        def taken(name: str) -> bool:
            return (
                self.versions.get(name) is not None or artifacts_dir(self.data_dir, name).exists()
            )

        if not taken(version):
            return version
        number = 2
        while taken(f"{version}-{number}"):
            number += 1
        fresh = f"{version}-{number}"
        logger.warning(
            "%s.fit returned version %s, which already exists; recording the new model as %s "
            "(nothing is overwritten, and Label Studio predicts again for a new version)",
            self.name, version, fresh,
        )  # fmt: skip
        return fresh

    def _save(self, path: Path) -> None:
        staging = path.with_name(path.name + ".saving")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            if self.model.saves():
                self.model.save(staging)
            else:
                save_state(self.model, staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        shutil.rmtree(path, ignore_errors=True)
        staging.rename(path)

    async def watch(self, interval: float = 1.0, supervisor: Supervisor | None = None) -> None:
        """Follow the store's current version forever (supervised)."""
        await (supervisor or Supervisor()).loop("version watch", self.follow, idle=interval)

    async def follow(self) -> bool:
        """Swap to the store's current version if it is not the one served (one look)."""
        async with self._lock:
            current = await anyio.to_thread.run_sync(self.versions.current)
            if current and current not in (self.model.model_version, self._refused):
                await self.swap(current, fresh=True)
        return False

    async def swap(self, version: str, *, fresh: bool) -> None:
        """Serve `version`: a new instance loading its artifacts (in place at startup)."""
        record = await anyio.to_thread.run_sync(self.versions.get, version)
        cls = type(self.model)
        if record is not None and record.path is None and version == self.initial_version:
            instance = await self._fresh() if fresh else self.model
        elif record is None or record.path is None or not self._restorable(Path(record.path)):
            if self._refused != version:
                self._refused = version
                why = (
                    f"{cls.__name__} has no load()"
                    if record is not None and record.path is not None
                    else "it has no saved artifacts"
                )
                logger.warning("cannot serve version %s: %s; serving %s", version, why,
                               self.model.model_version)  # fmt: skip
            return
        else:
            try:
                instance = await self._fresh() if fresh else self.model
                restore = instance.load if cls.loads() else partial(load_state, instance)
                await anyio.to_thread.run_sync(restore, Path(record.path))
            except Exception as exc:
                self._refused = version
                logger.error("loading version %s failed: %s", version, describe(exc), exc_info=exc)
                return
        if instance is not self.model:
            try:
                await anyio.to_thread.run_sync(instance.warmup)
            except Exception as exc:
                self._refused = version
                logger.error("warming up version %s failed: %s", version, describe(exc))
                return
        instance.model_version = version
        self._refused = None
        self._adopt(instance)
        if instance is not self.model:
            self.model = instance
        logger.info("now serving %s version %s", self.name, version)

    async def _fresh(self) -> LabelStudioModel:
        """A new instance of the served class, on the served instance's device."""
        return await anyio.to_thread.run_sync(construct, type(self.model), self.model.device)

    def _restorable(self, path: Path) -> bool:
        return type(self.model).loads() or has_state(path)
