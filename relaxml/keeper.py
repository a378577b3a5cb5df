"""`ModelKeeper`: the served model instance and its version, through training, swaps and
rollbacks.

- After a successful `fit` (on the leader), the keeper saves the model's artifacts under
  `<data_dir>/versions/<version>/` (when the model implements `save`) and records the version
  as current in the `VersionStore`.
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
from pathlib import Path

import anyio
import anyio.to_thread

from .errors import ModelOutputError, describe
from .events import TrainingEvent
from .model import LabelStudioModel
from .versions import VersionStore, artifacts_dir

logger = logging.getLogger("relaxml")


class ModelKeeper:
    """Holds the current model; applies new versions from training and from the store."""

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
            await self.swap(current, fresh=False)

    def fit(self, event: TrainingEvent) -> str | None:
        """Run the model's `fit` (blocking) and check what it returns."""
        version = self.model.fit(event)
        if version is not None and (not isinstance(version, str) or not version):
            raise ModelOutputError(
                f"{self.name}.fit must return a non-empty version string or None, got {version!r}"
            )
        return version

    async def finish(self, version: str, run_id: int, event: TrainingEvent) -> None:
        """Save and record a version `fit` returned; it becomes current everywhere."""
        async with self._lock:
            path: Path | None = None
            if self.model.saves():
                path = artifacts_dir(self.data_dir, version)
                await anyio.to_thread.run_sync(self._save, path)
            used = event.control.annotations_used if event.control else 0
            self.model.model_version = version
            await anyio.to_thread.run_sync(
                lambda: self.versions.record(
                    version,
                    run_id=run_id,
                    project=event.project_key,
                    annotations=used or len(event.annotations),
                    path=path,
                )
            )

    def _save(self, path: Path) -> None:
        staging = path.with_name(path.name + ".saving")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.model.save(staging)
        shutil.rmtree(path, ignore_errors=True)
        staging.rename(path)

    async def watch(self, interval: float = 1.0) -> None:
        """Follow the store's current version forever."""
        while True:
            await anyio.sleep(interval)
            try:
                async with self._lock:
                    current = await anyio.to_thread.run_sync(self.versions.current)
                    if current and current not in (self.model.model_version, self._refused):
                        await self.swap(current, fresh=True)
            except Exception as exc:  # keep watching whatever happens
                logger.error("version watch failed", exc_info=exc)

    async def swap(self, version: str, *, fresh: bool) -> None:
        """Serve `version`: a new instance loading its artifacts (in place at startup)."""
        record = await anyio.to_thread.run_sync(self.versions.get, version)
        cls = type(self.model)
        if record is not None and record.path is None and version == self.initial_version:
            instance = await anyio.to_thread.run_sync(cls) if fresh else self.model
        elif record is None or record.path is None or not cls.loads():
            if self._refused != version:
                self._refused = version
                why = (
                    "it has no saved artifacts" if cls.loads() else f"{cls.__name__} has no load()"
                )
                logger.warning("cannot serve version %s: %s; serving %s", version, why,
                               self.model.model_version)  # fmt: skip
            return
        else:
            try:
                instance = await anyio.to_thread.run_sync(cls) if fresh else self.model
                await anyio.to_thread.run_sync(instance.load, Path(record.path))
            except Exception as exc:
                self._refused = version
                logger.error("loading version %s failed: %s", version, describe(exc), exc_info=exc)
                return
        instance.model_version = version
        self._refused = None
        if instance is not self.model:
            self._adopt(instance)
            self.model = instance
        logger.info("now serving %s version %s", self.name, version)
