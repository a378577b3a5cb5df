"""`Replica`: one Ray Serve replica of the model, serving the same app as `--engine local`.

Each replica builds the app of one worker (`build_app`): every route, middleware, error and
Basic Auth as under uvicorn, its own model loaded once (in the app's lifespan, which Serve runs
when the replica starts). Replicas never lead: the `Coordinator` runs the background work.
`/health` gives the replica's Serve id as its `worker` (unique in the cluster, as shown by
`serve status` and in the replica's log file names); a process id is unique on one node only.

Serve calls `check_health` every few seconds: a replica whose background loop cannot go on
(its `/health` says DOWN) fails it, and Serve replaces the replica. Under a RayService (no
`relaxml serve` command), it also keeps the detached coordinator leading.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette

from .coordinator import keep_running
from .spec import APP_NAME, RaySpec

HEALTH_CHECK_PERIOD = 5.0
GRACEFUL_SHUTDOWN = 10.0  # as uvicorn's under --engine local: requests in flight get 10 s
QUIET_SERVE = {"enable_access_log": False}
"""Serve's own line per request is off: relaxml's `relaxml.access` writes one, as under uvicorn."""


class Replica:
    """The user's part of the Serve deployment (`replica_deployment` wraps it as ingress)."""

    def __init__(self, spec: RaySpec) -> None:
        self._spec = spec
        self._app: Starlette | None = None

    def __serve_build_asgi_app__(self) -> Starlette:
        """The replica's app (Serve then runs its lifespan: the model loads and warms up)."""
        from ray import serve

        from .._server.app import build_app
        from .._server.loader import load_model_class
        from ..logs import configure_logging

        configure_logging(self._spec.log_level)
        if self._spec.coordinator:
            keep_running(self._spec.coordinator)
        model_class = load_model_class(self._spec.target, self._spec.app_dir)
        replica_id = serve.get_replica_context().replica_id.unique_id
        self._app = build_app(
            model_class, self._spec.settings, workers=1, lead=False, worker=replica_id
        )
        return self._app

    def check_health(self) -> None:
        """Raise (Serve replaces the replica) once a background loop cannot go on; keep a
        detached coordinator leading."""
        if self._spec.coordinator:
            keep_running(self._spec.coordinator)
        backend = getattr(self._app.state, "backend", None) if self._app else None
        reason = backend.supervisor.reason if backend is not None else None
        if reason is not None:
            raise RuntimeError(f"relaxml replica is DOWN: {reason}")


def replica_deployment(spec: RaySpec) -> Any:
    """The bound Serve application: `spec.replicas` replicas, or autoscaling between
    `spec.autoscale`'s bounds, each with `spec.num_cpus` CPUs and `spec.num_gpus` GPUs."""
    from ray import serve

    scale: dict[str, Any] = (
        {"autoscaling_config": {"min_replicas": spec.autoscale[0],
                                "max_replicas": spec.autoscale[1]}}
        if spec.autoscale
        else {"num_replicas": spec.replicas}
    )  # fmt: skip
    deployment = serve.deployment(
        name=APP_NAME,
        ray_actor_options={"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus},
        max_ongoing_requests=spec.max_ongoing_requests(),
        health_check_period_s=HEALTH_CHECK_PERIOD,
        graceful_shutdown_timeout_s=GRACEFUL_SHUTDOWN,
        logging_config=QUIET_SERVE,
        **scale,
    )(serve.ingress()(Replica))
    return deployment.bind(spec)
