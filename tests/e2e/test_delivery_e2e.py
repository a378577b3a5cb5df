"""Background and auto delivery against a real Label Studio: 1,000 tasks, outages, SIGKILL."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from relaxml.labelstudio.client import LabelStudioClient

from ..support.labelstudio import LabelStudio
from ..support.processes import BackendFactory, BackendProcess
from .test_serving import LABEL_CONFIG, serve, wait_for

TARGET = "tests/support/recording_model.py:Paced"


def bulk_project(ls: LabelStudio, title: str, count: int) -> tuple[int, list[int]]:
    project = ls.create_project(title, LABEL_CONFIG)
    tasks = [{"data": {"text": f"task number {i}"}} for i in range(count)]
    return project["id"], ls.import_tasks(project["id"], tasks)


def start(factory: BackendFactory, port: int, data_dir: Path, **env: str) -> BackendProcess:
    return serve(
        factory,
        port,
        TARGET,
        env={
            "RELAXML_DATA_DIR": str(data_dir),
            "RELAXML_TEST_EVENTS": str(data_dir / "events.jsonl"),
            **env,
        },
    )


def jobs(backend: BackendProcess) -> list[dict[str, Any]]:
    return list(requests.get(backend.url + "/jobs", timeout=5).json()["jobs"])


def delivered(backend: BackendProcess) -> int:
    listing = jobs(backend)
    return int(listing[0]["done"]) if listing else 0


def stored_per_task(ls: LabelStudio, project_id: int, version: str = "paced-1") -> Counter[int]:
    return Counter(
        p["task"]
        for p in ls.list_predictions(project_id=project_id)
        if p["model_version"] == version
    )


def predict_ms(backend: BackendProcess) -> float:
    found = re.findall(
        r"POST /predict 200 ([\d.]+) ms \((\d+) tasks\)", backend.log_path.read_text()
    )
    assert found, "no bulk /predict in the log"
    return float(found[-1][0])


def test_thousand_tasks_in_background(label_studio, backend_factory, free_port, tmp_path):
    ls = label_studio
    project_id, task_ids = bulk_project(ls, "relaxml bulk", 1000)
    # a job predicted this fast goes in full imports only: 4 of 250, so delivery is seen running
    backend = start(
        backend_factory, free_port, tmp_path, RELAXML_DELIVERY="background",
        LABEL_STUDIO_API_KEY=ls.token, LABEL_STUDIO_URL=ls.url,
        RELAXML_TEST_TASK_DELAY="0.002", RELAXML_DELIVERY_BATCH="250",
    )  # fmt: skip
    ls.register_ml_backend(project_id, backend.url)
    ls.retrieve_predictions(project_id)
    assert predict_ms(backend) < 1000
    seen_running = wait_for(lambda: [j for j in jobs(backend) if 0 < j["done"] < j["total"]])
    assert seen_running[0]["rate"] > 0
    wait_for(lambda: jobs(backend)[0]["state"] == "done", timeout=120)
    assert stored_per_task(ls, project_id) == Counter(dict.fromkeys(task_ids, 1))
    assert jobs(backend)[0]["done"] == 1000


def test_label_studio_restarted_mid_delivery(label_studio, backend_factory, free_port, tmp_path):
    ls = label_studio
    project_id, task_ids = bulk_project(ls, "relaxml outage", 600)
    backend = start(
        backend_factory, free_port, tmp_path, RELAXML_DELIVERY="background",
        LABEL_STUDIO_API_KEY=ls.token, LABEL_STUDIO_URL=ls.url,
        RELAXML_TEST_TASK_DELAY="0.01", RELAXML_DELIVERY_BATCH="100",
    )  # fmt: skip
    ls.register_ml_backend(project_id, backend.url)
    ls.retrieve_predictions(project_id)
    wait_for(lambda: delivered(backend) >= 100, timeout=60)
    ls.stop()
    try:
        wait_for(lambda: jobs(backend)[0]["delivering"] > 0, timeout=60)
    finally:
        ls.start()
    wait_for(lambda: jobs(backend)[0]["state"] == "done", timeout=180)
    assert stored_per_task(ls, project_id) == Counter(dict.fromkeys(task_ids, 1))
    assert "retrying" in backend.log_path.read_text()


def test_relaxml_killed_mid_delivery(label_studio, backend_factory, free_port, tmp_path):
    ls = label_studio
    project_id, task_ids = bulk_project(ls, "relaxml sigkill", 600)
    env = {
        "RELAXML_DELIVERY": "background",
        "LABEL_STUDIO_API_KEY": ls.token,
        "LABEL_STUDIO_URL": ls.url,
        "RELAXML_TEST_TASK_DELAY": "0.01",
        "RELAXML_DELIVERY_BATCH": "100",  # full imports go while the job is predicted
    }
    first = start(backend_factory, free_port, tmp_path, **env)
    ls.register_ml_backend(project_id, first.url)
    ls.retrieve_predictions(project_id)
    wait_for(lambda: 100 <= delivered(first) < 600, timeout=60)
    first.kill()
    second = start(backend_factory, free_port, tmp_path, **env)
    assert "resuming" in second.log_path.read_text() or wait_for(
        lambda: "resuming" in second.log_path.read_text()
    )
    wait_for(lambda: jobs(second)[0]["state"] == "done", timeout=180)
    assert stored_per_task(ls, project_id) == Counter(dict.fromkeys(task_ids, 1))


def test_auto_mode_with_a_personal_access_token(label_studio, backend_factory, free_port, tmp_path):
    ls = label_studio
    project_id, task_ids = bulk_project(ls, "relaxml auto", 40)
    pat = ls.personal_access_token()
    backend = start(
        backend_factory, free_port, tmp_path, LABEL_STUDIO_API_KEY=pat, LABEL_STUDIO_URL=ls.url
    )
    ls.register_ml_backend(project_id, backend.url)

    task = ls.get_task(task_ids[0])  # opening a task: inline
    assert [p["model_version"] for p in task["predictions"]] == ["paced-1"]
    assert jobs(backend) == []

    ls.retrieve_predictions(project_id)  # bulk: background, delivered with the PAT
    wait_for(lambda: jobs(backend) and jobs(backend)[0]["state"] == "done", timeout=60)
    assert jobs(backend)[0]["total"] == 39
    assert stored_per_task(ls, project_id) == Counter(dict.fromkeys(task_ids, 1))


def test_personal_access_token_refresh_against_label_studio(label_studio):
    client = LabelStudioClient(label_studio.url, label_studio.personal_access_token())
    try:
        assert client.request("GET", "api/current-user/whoami").status_code == 200
        first = client.auth_headers()["Authorization"]
        assert first.startswith("Bearer ")
        client._access_expires = 0  # due: refreshed before the next call
        assert client.request("GET", "api/current-user/whoami").status_code == 200
        assert client.auth_headers()["Authorization"].startswith("Bearer ")
        client._access = first[len("Bearer ") :][:-4] + "AAAA"  # a broken signature: 401
        client._access_expires = 1e12
        assert client.request("GET", "api/current-user/whoami").status_code == 200
    finally:
        client.close()
