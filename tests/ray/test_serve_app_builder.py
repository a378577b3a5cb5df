"""`relaxml._ray.app:app_builder`: relaxml as a Serve application of its own (a KubeRay
RayService, `serve run`), with a detached coordinator that the replicas keep leading."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from relaxml._ray.app import app_builder
from relaxml._ray.coordinator import NAMESPACE

from ..conftest import wait_for
from ..support.processes import LOOPBACK, free_port


@pytest.fixture
def served_app(ray_session: Any, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    """The builder's application on the session's Ray; its URL and its coordinator."""
    with warnings.catch_warnings():  # Serve's own models use pydantic's deprecated API
        warnings.simplefilter("ignore", DeprecationWarning)
        from ray import serve

    port = free_port()
    serve.start(http_options={"host": LOOPBACK, "port": port})
    args = {"target": "tests.support.ray_model:Where", "data_dir": str(tmp_path / "data"),
            "replicas": "2", "num_cpus": "0.25", "log_level": "warning"}  # fmt: skip
    try:
        serve.run(app_builder(args), name="relaxml", route_prefix="/")
        (name,) = [
            actor["name"]
            for actor in ray_session.util.list_named_actors(all_namespaces=True)
            if actor["namespace"] == NAMESPACE
        ]
        yield f"http://{LOOPBACK}:{port}", ray_session.get_actor(name, namespace=NAMESPACE)
    finally:
        serve.shutdown()
        for actor in ray_session.util.list_named_actors(all_namespaces=True):
            if actor["namespace"] == NAMESPACE:
                ray_session.kill(ray_session.get_actor(actor["name"], namespace=NAMESPACE))


def versions_served(url: str) -> dict[str, str]:
    seen = {}
    for _ in range(20):
        health = requests.get(url + "/health", timeout=5).json()
        seen[health["worker"]] = health["model_version"]
    return seen


def test_the_detached_coordinator_trains_and_leads_again_after_ray_restarts_it(
    ray_session: Any, served_app: tuple[str, Any]
) -> None:
    url, coordinator = served_app
    assert ray_session.get(coordinator.started.remote(), timeout=60) == "where-0"
    assert requests.post(url + "/train", json={"project": 1}, timeout=5).status_code == 200
    wait_for(lambda: set(versions_served(url).values()) == {"where-1"}, timeout=30, interval=0.2)
    assert len(versions_served(url)) == 2
    first = ray_session.get(coordinator.pid.remote())
    ray_session.kill(coordinator, no_restart=False)  # its process dies; Ray starts another
    wait_for(lambda: ray_session.get(coordinator.pid.remote(), timeout=60) != first, timeout=60)
    # the replicas' health checks (every 5 s) have the restarted coordinator lead again
    assert ray_session.get(coordinator.started.remote(), timeout=60) == "where-1"
    assert requests.post(url + "/train", json={"project": 1}, timeout=5).status_code == 200
    wait_for(lambda: set(versions_served(url).values()) == {"where-2"}, timeout=30, interval=0.2)


def test_the_builder_refuses_unknown_args() -> None:
    with pytest.raises(ValueError, match="unknown: workers"):
        app_builder({"target": "tests.support.ray_model:Where", "workers": "2"})
