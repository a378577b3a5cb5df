"""`app_builder`: relaxml as a Serve application of its own, for a KubeRay RayService or
`serve run`, where no `relaxml serve` command stays in the foreground.

    serve run relaxml._ray.app:app_builder target=mymodel:Squirrel replicas=2

or, in a RayService's `serveConfigV2`, `import_path: relaxml._ray.app:app_builder` with the
same `args`. It starts (or finds) a detached coordinator named for the data directory and
returns the replicas' deployment; the replicas keep the coordinator leading. Other settings
come from the `RELAXML_*` environment variables of the Ray pods, as for `relaxml serve`.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..settings import Settings
from .coordinator import coordinator_actor
from .replica import replica_deployment
from .spec import APP_NAME, RaySpec

ARGS = ("target", "app_dir", "data_dir", "replicas", "autoscale", "num_cpus", "num_gpus")


def app_builder(args: dict[str, Any]) -> Any:
    """The Serve application for `args`: `target` (required), `app_dir`, `data_dir`,
    `replicas` or `autoscale` ("MIN:MAX"), `num_cpus`, `num_gpus`, `log_level`."""
    import ray

    unknown = sorted(set(args) - {*ARGS, "log_level"})
    if unknown or "target" not in args:
        raise ValueError(f"relaxml needs args target and some of {', '.join(ARGS[1:])}; "
                         f"unknown: {', '.join(unknown) or 'none'}")  # fmt: skip
    settings = Settings.from_env(**({"data_dir": args["data_dir"]} if "data_dir" in args else {}))
    data_dir = Path(settings.data_dir).resolve()
    digest = hashlib.sha256(str(data_dir).encode()).hexdigest()[:12]
    low, _, high = str(args.get("autoscale", "")).partition(":")
    spec = RaySpec.create(
        str(args["target"]),
        str(args.get("app_dir", os.getcwd())),
        settings,
        log_level=str(args.get("log_level", "info")),
        replicas=int(args.get("replicas", 1)),
        autoscale=(int(low), int(high)) if high else None,
        num_cpus=float(args.get("num_cpus", 1)),
        num_gpus=float(args.get("num_gpus", 0)),
        coordinator=f"{APP_NAME}-coordinator-{digest}",
    )
    coordinator_actor(ray, spec).ensure_running.remote()
    return replica_deployment(spec)
