"""`RaySpec`: what `relaxml serve --engine ray` was asked for, handed to every Ray process.

The driver (the `relaxml serve` command) builds one from its options and sends it to the
coordinator and to each Serve replica, which load the model class from `target` themselves: a
class from a file (`path/model.py:Class`) cannot be sent by reference, a target can. Paths are
made absolute here, so that a Ray worker started in another directory finds them.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..settings import Settings

APP_NAME = "relaxml"
"""The Serve application's name, and its deployment's."""

REQUEST_HEADROOM = 16
"""Requests a replica takes beyond relaxml's own admission bound, so `/health` and `/setup`
never wait in Serve's queue behind predictions (relaxml answers 503 past its bound itself)."""


@dataclass(frozen=True)
class RaySpec:
    """The model, its settings, and the shape of the deployment."""

    target: str
    app_dir: str
    settings: Settings
    log_level: str = "info"
    host: str = "0.0.0.0"
    port: int = 9090
    replicas: int = 1
    autoscale: tuple[int, int] | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    address: str | None = None
    coordinator: str | None = None
    """The name of a detached coordinator the replicas keep running (a RayService, where no
    `relaxml serve` command stays to run it: `relaxml._ray.app`); None under the command."""

    @classmethod
    def create(cls, target: str, app_dir: str, settings: Settings, **options: object) -> RaySpec:
        """A spec whose target, app directory and data directory are absolute paths."""
        module_part, sep, attr = target.rpartition(":")
        if not sep:
            module_part, attr = target, ""
        if module_part.endswith(".py"):
            target = str(Path(module_part).resolve()) + (f":{attr}" if attr else "")
        settings = settings.with_overrides(
            data_dir=str(Path(settings.data_dir).resolve()),
            # under Ray, a replica fails its health check; the coordinator exits, Ray restarts it
            exit_on_fatal=False,
        )
        return cls(target, str(Path(app_dir).resolve()), settings, **options)  # type: ignore[arg-type]

    @property
    def most_replicas(self) -> int:
        """The number of replicas, or the autoscaling maximum."""
        return self.autoscale[1] if self.autoscale else self.replicas

    def local_cpus(self) -> int:
        """Logical CPUs of a local Ray owned by the command: this machine's cores, or more when
        every replica and the coordinator ask for more (Ray would never place them otherwise)."""
        wanted = math.ceil(self.num_cpus * (self.most_replicas + 1))
        return max(os.cpu_count() or 1, wanted)

    def max_ongoing_requests(self) -> int:
        """Requests Serve sends one replica at once: relaxml's own admission bound, and some."""
        return self.settings.max_concurrency + self.settings.max_queue + REQUEST_HEADROOM

    def url(self) -> str:
        """Where Label Studio reaches the backend (a wildcard host shown as localhost)."""
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"
