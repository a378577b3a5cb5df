"""`import_ray` and `ray_runtime`: Ray, imported with a clear error, started and always stopped.

`ray_runtime` starts a local Ray owned by the command that calls it (`address="local"`: a bare
`ray.init()` would join whatever stale cluster it finds on the machine) and shuts it down on the
way out, so no Ray process outlives the command. With an address (`--ray-address`, or
`RAY_ADDRESS`), it connects to that cluster instead, and leaves it running.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

INSTALL_HINT = "pip install 'relaxml[ray]'  (from a checkout: pip install -e '.[ray]')"


class RayUnavailable(RuntimeError):
    """Ray is not installed: `--engine ray` needs the `relaxml[ray]` extra."""


def import_ray() -> Any:
    """The `ray` module, or `RayUnavailable` saying how to install it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"--engine ray needs Ray: {INSTALL_HINT}") from None
    return ray


@contextmanager
def ray_runtime(
    address: str | None = None, *, num_cpus: float | None = None, num_gpus: float | None = None
) -> Iterator[Any]:
    """Ray for the length of a command: a local one of its own, or the cluster at `address`."""
    ray = import_ray()
    address = address or os.environ.get("RAY_ADDRESS") or None
    if ray.is_initialized():  # a caller (a test session) already runs one: use it, leave it
        yield ray
        return
    if address:
        ray.init(address=address, include_dashboard=False, configure_logging=False)
    else:
        ray.init(
            address="local",
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            configure_logging=False,
        )
    try:
        yield ray
    finally:
        ray.shutdown()
