"""`relaxml annotate` against a real Label Studio: 2,000 tasks, one prediction each, once."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from ..support.labelstudio import LabelStudio

ROOT = Path(__file__).resolve().parents[2]
SENTIMENT = ROOT / "examples" / "sentiment"
TARGET = f"{SENTIMENT / 'model.py'}:NaiveBayesSentiment"
COUNT = 2000


def annotate(ls: LabelStudio, project_id: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.token}
    env.pop("RAY_ADDRESS", None)
    command = [sys.executable, "-m", "relaxml", "annotate", TARGET, "--project", str(project_id)]
    return subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )


ENGINES = [
    pytest.param((), id="local"),
    pytest.param(("--engine", "ray", "--replicas", "2", "--num-cpus", "0.5"), id="ray"),
]


@pytest.mark.parametrize("engine", ENGINES)
def test_annotate_stores_one_prediction_per_task_and_a_second_run_none(label_studio, engine):
    if engine and importlib.util.find_spec("ray") is None:
        if os.environ.get("RELAXML_RAY", "").strip().lower() == "require":
            pytest.fail("Ray is not installed: pip install -e '.[ray]'", pytrace=False)
        pytest.skip("Ray is not installed: pip install -e '.[ray]'")
    ls = label_studio
    config = (SENTIMENT / "label_config.xml").read_text()
    project_id = ls.create_project(f"annotate e2e {engine[1] if engine else 'local'}", config)["id"]
    words = ["great and lovely", "awful and bad", "fine I guess", "wonderful", "terrible"]
    task_ids: list[int] = []
    for start in range(0, COUNT, 500):
        batch = [{"data": {"text": f"{words[i % 5]} {i}"}} for i in range(start, start + 500)]
        task_ids += ls.import_tasks(project_id, batch)
    assert len(set(task_ids)) == COUNT

    first = annotate(ls, project_id, *engine)
    assert first.returncode == 0, first.stderr[-3000:]
    assert f"{COUNT} predicted, 0 skipped (already predicted), 0 failed" in first.stderr
    stored = ls.list_predictions(project_id=project_id)
    per_task = Counter(p["task"] for p in stored if p["model_version"] == "nb-0")
    assert set(per_task) == set(task_ids)
    assert set(per_task.values()) == {1}
    assert len(stored) == COUNT
    assert all(p["result"][0]["value"]["choices"][0] in ("positive", "negative") for p in stored)

    second = annotate(ls, project_id, *engine)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"0 predicted, {COUNT} skipped (already predicted), 0 failed" in second.stderr
    assert len(ls.list_predictions(project_id=project_id)) == COUNT
