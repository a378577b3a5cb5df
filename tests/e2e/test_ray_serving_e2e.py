"""`relaxml serve --engine ray` driven by a real Label Studio 1.23.2: two Serve replicas answer,
the coordinator delivers a background Retrieve Predictions and trains, both replicas swap."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import requests

from ..ray.conftest import require_ray
from ..support.labelstudio import LabelStudio
from ..support.rayserve import RayServe
from .test_serving import project_with_tasks, wait_for

pytestmark = pytest.mark.ray

TARGET = "examples/sentiment/model.py:NaiveBayesSentiment"
NEGATIVE = {
    "from_name": "sentiment",
    "to_name": "text",
    "type": "choices",
    "value": {"choices": ["negative"]},
}


def versions_served(server: RayServe) -> dict[str, str]:
    seen = {}
    for _ in range(20):
        health = requests.get(server.url + "/health", timeout=5).json()
        seen[health["worker"]] = health["model_version"]
    return seen


def test_label_studio_drives_two_replicas_and_the_coordinator(
    label_studio: LabelStudio, tmp_path: Path
) -> None:
    require_ray()
    ls = label_studio
    project_id, task_ids = project_with_tasks(ls, "relaxml on ray")
    options = ["--replicas", "2", "--num-cpus", "0.25", "--data-dir", str(tmp_path / "data")]
    # more than 2 tasks go to the background: Retrieve Predictions is delivered by the coordinator
    env = {"RELAXML_AUTO_INLINE_MAX": "2", "RELAXML_VERSION_POLL": "0.2"}
    # the coordinator never sees /setup's token: it reaches Label Studio with a configured key
    env |= {"LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.personal_access_token()}
    server = RayServe(TARGET, options, env, tmp_path / "serve.log")
    try:
        server.wait_serving()
        ml = ls.register_ml_backend(project_id, server.url)
        assert ls.get_ml_backend(ml["id"])["state"] == "CO"

        # Opening a task: an inline prediction from a replica.
        task = ls.get_task(task_ids[0])
        assert [p["model_version"] for p in task["predictions"]] == ["nb-0"]

        # Retrieve Predictions: queued by a replica, delivered by the coordinator, once each.
        ls.retrieve_predictions(project_id)

        def stored() -> Counter[int]:
            return Counter(p["task"] for p in ls.list_predictions(project_id=project_id))

        wait_for(lambda: set(stored()) == set(task_ids), timeout=60)
        assert stored() == Counter(task_ids)
        jobs = requests.get(server.url + "/jobs", timeout=5).json()["jobs"]
        assert [job["state"] for job in jobs] == ["done"]

        # An annotation reaches fit through the event webhook, in the coordinator; every
        # replica then serves the trained version.
        ls.create_annotation(task_ids[5], [NEGATIVE])
        wait_for(lambda: set(versions_served(server).values()) == {"nb-1"}, timeout=60)
        assert len(versions_served(server)) == 2
    finally:
        status, left = server.stop()
    assert left == {}, left
    assert status == 0, server.log()[-3000:]
    assert ls.personal_access_token() not in server.log()
