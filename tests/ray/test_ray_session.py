"""The session's local Ray starts, runs a task on it, and is this test run's own."""

from __future__ import annotations

from typing import Any


def test_local_ray_runs_a_task(ray_session: Any) -> None:
    @ray_session.remote(num_cpus=0.5)
    def square(value: int) -> int:
        return value * value

    assert ray_session.get([square.remote(n) for n in range(4)]) == [0, 1, 4, 9]
    assert ray_session.cluster_resources()["CPU"] == 4
