"""`Coordinator`: the one Ray actor that owns the data directory's background work.

Under `relaxml serve --engine ray`, the Serve replicas answer every request and never lead:
a bulk `/predict` queues its tasks in the data directory's outbox, a `/webhook` or `/train`
queues its event, and the replica answers at once, as a worker of `--workers N` that is not
the leader does. The coordinator is the leader. It builds the same app as a worker
(`build_app`, without serving HTTP): its own model instance, the leader lock, and the loops
that predict and deliver queued tasks and run `fit`. A trained version lands in the data
directory, and every replica swaps to it within `RELAXML_VERSION_POLL` seconds.

Ray restarts the actor when its process dies (`max_restarts=-1`) and runs `run` again
(`max_task_retries=-1`): unfinished deliveries are resumed and interrupted training runs
queued again, exactly as after a restart of `relaxml serve`. When a background loop cannot go
on (a corrupt database, the same error five times in a row), the coordinator exits with status
70 so that Ray restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from typing import Any

from .._supervise import FATAL_EXIT_CODE
from .spec import RaySpec

logger = logging.getLogger(__name__)

WORKER_ID = "coordinator"
NAMESPACE = "relaxml"
CHECK_EVERY = 0.5


class Coordinator:
    """The leader of a data directory, as a Ray actor (see `coordinator_actor`)."""

    def __init__(self, spec: RaySpec) -> None:
        self._spec = spec
        self._started: asyncio.Event | None = None
        self._stopping: asyncio.Event | None = None
        self._backend: Any = None
        self._task: asyncio.Task[None] | None = None

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._started is None or self._stopping is None:  # created on the actor's loop
            self._started, self._stopping = asyncio.Event(), asyncio.Event()
        return self._started, self._stopping

    async def run(self) -> None:
        """Load the model, lead the data directory's background work until `stop`.

        Raises what the model raised if it fails to start; exits the process (Ray restarts
        it) when a background loop cannot go on."""
        from .._server.app import build_app
        from .._server.loader import load_model_class
        from ..logs import configure_logging

        started, stopping = self._events()
        configure_logging(self._spec.log_level)
        model_class = load_model_class(self._spec.target, self._spec.app_dir)
        app = build_app(model_class, self._spec.settings, workers=1, lead=True, worker=WORKER_ID)
        reason: str | None = None
        async with app.router.lifespan_context(app):
            backend = app.state.backend
            self._backend = backend
            started.set()
            logger.info("coordinator leads the background work of %s", backend.data_dir.path)
            while not stopping.is_set():
                reason = backend.supervisor.reason
                if reason is not None:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stopping.wait(), CHECK_EVERY)
        if reason is not None:
            logger.critical("coordinator stops so that Ray restarts it: %s", reason)
            logging.shutdown()
            sys.stderr.flush()
            os._exit(FATAL_EXIT_CODE)

    async def ensure_running(self) -> None:
        """Start `run` in the actor's loop unless it runs already. Under a RayService no
        command stays to call `run`: the replicas call this at start and at every health
        check, so a coordinator Ray restarted leads again within seconds."""
        if self._task is None or self._task.done():
            if self._task is not None and not self._task.cancelled() and self._task.exception():
                logger.error("coordinator failed, starting again: %s", self._task.exception())
            self._task = asyncio.get_running_loop().create_task(self.run())

    async def started(self) -> str:
        """Wait until the model has loaded and the loops run; return its current version."""
        started, _ = self._events()
        await started.wait()
        return str(self._backend.model_version)

    async def stop(self) -> None:
        """Stop leading: `run` closes the app (its loops, the database) and returns."""
        _, stopping = self._events()
        stopping.set()

    async def pid(self) -> int:
        """The coordinator's process id (to watch it, or to kill it in a test)."""
        return os.getpid()


def coordinator_actor(ray: Any, spec: RaySpec) -> Any:
    """Start the coordinator actor with one replica's resources (it runs `predict` for
    background jobs and `fit`), restarted by Ray whenever its process dies. With
    `spec.coordinator`, a detached actor of that name (or the one already running)."""
    options: dict[str, Any] = {
        "num_cpus": spec.num_cpus,
        "num_gpus": spec.num_gpus,
        "max_restarts": -1,
        "max_task_retries": -1,
        "max_concurrency": 8,
    }
    if spec.coordinator:
        options.update(
            name=spec.coordinator,
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
        )
    return ray.remote(**options)(Coordinator).remote(spec)


def keep_running(name: str) -> None:
    """Ask the detached coordinator `name` to lead (`Coordinator.ensure_running`); a
    coordinator that cannot be found is logged, never raised: replicas serve on meanwhile."""
    import ray

    try:
        ray.get_actor(name, namespace=NAMESPACE).ensure_running.remote()
    except ValueError:
        logger.warning("no coordinator %r: background delivery and training wait for it", name)
