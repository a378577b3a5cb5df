"""A worker built with `lead=False` (a Ray Serve replica) queues work and never leads, even with
the leader lock free; `/health` gives the worker id it was given."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
from starlette.testclient import TestClient

from relaxml._datadir.leader import Follower, LeaderLock
from relaxml._server.app import build_app
from relaxml.settings import Settings

from .support.models import Echo


class Background(Echo):
    delivery = "background"


def test_a_follower_never_takes_the_lock_even_when_it_is_free(tmp_path: Path) -> None:
    follower = Follower(tmp_path / "leader.lock")
    assert not follower.try_acquire()
    assert not follower.held

    async def waits() -> bool:
        with anyio.move_on_after(0.2):
            await follower.acquire(poll=0.01)
            return True
        return False

    assert anyio.run(waits) is False
    leader = LeaderLock(tmp_path / "leader.lock")
    assert leader.try_acquire()  # the lock was free all along
    leader.release()


def test_a_worker_that_does_not_lead_queues_and_leaves_the_queue_to_the_leader(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({}, data_dir=str(tmp_path / "data"))
    app = build_app(Background, settings, workers=1, lead=False, worker="replica-a")
    with TestClient(app) as client:
        assert client.get("/health").json()["worker"] == "replica-a"
        body = {"tasks": [{"id": i, "data": {"text": "x"}} for i in range(3)]}
        job = client.post("/predict", json=body).json()["job"]
        time.sleep(1.5)  # three idle rounds of the delivery loops, had they been running
        report = client.get(f"/jobs/{job}").json()
        assert (report["queued"], report["done"]) == (3, 0)
        assert not client.app.state.backend.leader.held  # type: ignore[attr-defined]
    leader = LeaderLock(tmp_path / "data" / "leader.lock")
    assert leader.try_acquire()  # nobody held it
    leader.release()
