"""`serve_on_ray`: `relaxml serve --engine ray`, in the foreground until SIGINT or SIGTERM.

The command starts (or joins, with `--ray-address`) Ray, starts the coordinator and waits for
its model to load, then runs the Serve application of the replicas on `--host`/`--port`. On
SIGINT or SIGTERM it deletes the application (replicas get 10 s for the requests in flight),
stops the coordinator (which closes the data directory), and shuts its own local Ray down, so
that no Ray process outlives it. On a cluster it joined, it removes only what it started.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

from .coordinator import coordinator_actor
from .replica import QUIET_SERVE, replica_deployment
from .runtime import ray_runtime
from .spec import APP_NAME, RaySpec

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 30.0


class StartupFailed(RuntimeError):
    """The model failed to start in the coordinator or in a replica (exit status 3)."""


class CoordinatorFailed(RuntimeError):
    """The coordinator stopped for good while serving (exit status 70, as a fatal loop)."""


def serve_on_ray(spec: RaySpec, stop: threading.Event | None = None) -> None:
    """Serve `spec` on Ray until SIGINT/SIGTERM (or until `stop` is set), then clean up."""
    stop = stop or threading.Event()
    local = not spec.address
    with ray_runtime(spec.address, num_cpus=spec.local_cpus() if local else None) as ray:
        from ray import serve

        if not spec.settings.label_studio_api_key:
            logger.warning(
                "LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY are not set: the coordinator never "
                "sees /setup's token, so background delivery and training cannot reach "
                "Label Studio's API"
            )
        coordinator = coordinator_actor(ray, spec)
        run = coordinator.run.remote()
        try:
            with _signals_set(stop):
                version = _wait_started(ray, coordinator, run, stop)
                if stop.is_set():
                    return
                serve.start(
                    http_options={"host": spec.host, "port": spec.port},
                    logging_config=QUIET_SERVE,
                )
                try:
                    serve.run(replica_deployment(spec), name=APP_NAME, route_prefix="/")
                except RuntimeError as exc:
                    raise StartupFailed(f"the Serve application failed to start: {exc}") from None
                logger.info(
                    "serving %s (model version %s) on Ray at %s: %s",
                    spec.target,
                    version,
                    spec.url(),
                    _shape(spec),
                )
                while not stop.is_set():
                    done, _ = ray.wait([run], timeout=1.0)
                    if done:  # the coordinator ended for good (Ray restarts a dead one)
                        raise CoordinatorFailed(_outcome(ray, run))
        finally:
            _clean_up(ray, serve, coordinator, run, local=local)


def _wait_started(ray: Any, coordinator: Any, run: Any, stop: threading.Event) -> str:
    """The coordinator's model version once it leads; `StartupFailed` if its model raised."""
    started = coordinator.started.remote()
    while not stop.is_set():
        done, _ = ray.wait([started, run], num_returns=1, timeout=1.0)
        if started in done:
            return str(ray.get(started))
        if run in done:
            raise StartupFailed(f"the model failed to start: {_outcome(ray, run)}")
    return ""


def _clean_up(ray: Any, serve: Any, coordinator: Any, run: Any, *, local: bool) -> None:
    """Delete the Serve application, stop the coordinator gracefully, then end it."""
    logger.info("stopping: deleting the Serve application, stopping the coordinator")
    try:
        if local:
            serve.shutdown()
        else:
            serve.delete(APP_NAME)
    except Exception as exc:  # shutting down: say it and go on
        logger.warning("Serve did not shut down cleanly: %s", exc)
    try:
        coordinator.stop.remote()
        ray.wait([run], timeout=STOP_TIMEOUT)
    finally:
        ray.kill(coordinator, no_restart=True)


def _shape(spec: RaySpec) -> str:
    scale = (
        f"autoscaling {spec.autoscale[0]}-{spec.autoscale[1]} replicas"
        if spec.autoscale
        else f"{spec.replicas} replica{'s' if spec.replicas != 1 else ''}"
    )
    return f"{scale}, {spec.num_cpus:g} CPU and {spec.num_gpus:g} GPU each, and a coordinator"


def _outcome(ray: Any, run: Any) -> str:
    """Why the coordinator's `run` ended: the exception it raised, in one line."""
    from ..errors import describe

    try:
        ray.get(run)
    except Exception as exc:
        cause = getattr(exc, "cause", None) or exc  # the user's exception inside Ray's
        return describe(cause) if isinstance(cause, Exception) else str(cause)
    return "the coordinator returned"


class _signals_set:
    """SIGINT and SIGTERM set `stop` while inside (the previous handlers come back after)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach the main thread only: the caller sets `stop`
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        logger.info("received %s", signal.Signals(signum).name)
        self._stop.set()

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
