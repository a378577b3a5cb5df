"""`ProjectModels`: one model instance per Label Studio project, for a model whose class sets
`per_project = True`.

```
/setup, /predict, a training run of project P ──get(P)──▶ resident?  ──yes──▶ P's keeper
                                                            │ no (P's own lock: other
                                                            ▼  projects are not held up)
                         construct the class on the worker's device ─▶ load P's current version
                         ─▶ warmup ─▶ resident (at most `max_loaded`, least recently used dropped)
```

Each instance has its own `ModelKeeper`, its versions in `VersionStore.for_project(P)` and its
artifacts under `<data_dir>/projects/P/versions/`. A dropped instance is built again, with its
project's current version, on its next call; requests still running on it finish on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.to_thread

from .._lru import LRU
from .._metrics import Metrics
from .._supervise import Supervisor
from ..memo import Memo
from ..model import LabelStudioModel, construct
from .keeper import ModelKeeper
from .versions import VersionStore, project_dir

logger = logging.getLogger(__name__)


class ProjectModels:
    """The resident per-project instances of one model class, each with its keeper."""

    def __init__(
        self,
        cls: type[LabelStudioModel],
        device: str,
        versions: VersionStore,
        data_dir: Path,
        *,
        max_loaded: int,
        adopt: Callable[[LabelStudioModel], None],
        metrics: Metrics,
    ) -> None:
        self._cls = cls
        self._device = device
        self._versions = versions
        self._data_dir = data_dir
        self._adopt = adopt
        self._metrics = metrics
        self._resident: LRU[str, ModelKeeper] = LRU(max_loaded)
        self._building: dict[str, anyio.Lock] = {}

    def __len__(self) -> int:
        """How many instances are resident (safe to read from any thread)."""
        return len(self._resident)

    def resident(self) -> list[str]:
        """The keys of the resident instances, least recently used first."""
        return self._resident.keys()

    def peek(self, key: str) -> ModelKeeper | None:
        """The keeper of a resident instance, without marking it used."""
        return self._resident.get(key, touch=False)

    async def get(self, key: str) -> tuple[ModelKeeper, bool]:
        """The keeper of project `key`'s instance, and whether it was built by this call.

        Building runs in a worker thread under `key`'s own lock: a request of another project
        never waits for it. An exception from the class's `__init__`, `load` or `warmup`
        propagates; nothing is kept, and the next call tries again.
        """
        keeper = self._resident.get(key)
        if keeper is not None:
            return keeper, False
        lock = self._building.setdefault(key, anyio.Lock())
        try:
            async with lock:
                keeper = self._resident.get(key)
                if keeper is not None:
                    return keeper, False
                keeper = await self._build(key)
                dropped = self._resident.put(key, keeper)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._building.pop(key, None)
        self._metrics.inc("relaxml_model_loads_total")
        if dropped:
            self._metrics.inc("relaxml_model_evictions_total", len(dropped))
            logger.info("dropped %d resident model instance(s) (RELAXML_MAX_LOADED_MODELS=%d)",
                        len(dropped), self._resident.size)  # fmt: skip
        return keeper, True

    async def _build(self, key: str) -> ModelKeeper:
        model = await anyio.to_thread.run_sync(construct, self._cls, self._device)
        memo = Memo(self._cls.memo_entries, self._cls.memo_bytes)

        def adopt(instance: LabelStudioModel) -> None:
            self._adopt(instance)
            memo.clear()  # nothing an older version of this project's model computed

        keeper = ModelKeeper(
            model,
            self._versions.for_project(key),
            project_dir(self._data_dir, key),
            adopt=adopt,
        )
        keeper.memo = memo  # each project's model its own: values differ between models
        await keeper.start()
        await anyio.to_thread.run_sync(keeper.model.warmup)
        logger.info("project %s: %s version %s loaded", key, self._cls.__name__,
                    keeper.model.model_version)  # fmt: skip
        return keeper

    async def watch(self, interval: float = 1.0, supervisor: Supervisor | None = None) -> None:
        """Follow every resident project's current version forever (supervised)."""
        await (supervisor or Supervisor()).loop("version watch", self._follow, idle=interval)

    async def _follow(self) -> bool:
        for key in self.resident():
            keeper = self.peek(key)
            if keeper is not None:
                await keeper.follow()
        return False
