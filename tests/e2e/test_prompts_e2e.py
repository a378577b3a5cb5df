"""`context.prompts` of a model served by `relaxml serve`, fed by Label Studio 1.23.2's editor.

The annotator's flow of tests/support/capture_interactive.py, with relaxml as the backend: a
smart keypoint, then an Alt-click (the editor's negative point), then a keypoint with the label
the config marks negative. The model writes down what `context.prompts` held on each call.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ..conftest import wait_for
from ..support.browser import chromium_page
from ..support.browser import unavailable_reason as browser_unavailable
from ..support.capture_interactive import create_project, open_labeling
from .conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def browser_ready() -> None:
    reason = browser_unavailable()
    if reason is not None:
        raise unavailable(reason)


def test_the_served_model_sees_positive_and_negative_points(
    label_studio, browser_ready, backend_factory, free_port, tmp_path: Path
):
    ls = label_studio
    record = tmp_path / "prompts.jsonl"
    argv = [sys.executable, "-m", "relaxml", "serve", "tests.support.prompt_model:PromptRecorder"]
    argv += ["--host", "127.0.0.1", "--port", str(free_port)]
    env = {"PYTHONPATH": str(ROOT), "RELAXML_TEST_PROMPTS": str(record)}
    backend = backend_factory(argv, env, free_port)
    project_id = create_project(ls, backend.url)

    def calls() -> list[list[list[object]]]:
        lines = record.read_text().splitlines() if record.exists() else []
        return [json.loads(line) for line in lines]

    with chromium_page(tmp_path / "chromium") as page:
        editor = open_labeling(page, ls, project_id)
        editor.select("kp", "Object", True)
        editor.click(160, 120)
        # The editor sends a region when the next thing happens on the page.
        editor.select("kp", "Object", True)
        wait_for(lambda: len(calls()) >= 1, timeout=60)
        editor.idle()
        editor.click(480, 360, alt=True)
        editor.select("kp", "Background", True)
        wait_for(lambda: len(calls()) >= 2, timeout=60)
        editor.idle()
        editor.click(320, 240)
        editor.select("kp", "Object", True)
        wait_for(lambda: len(calls()) >= 3, timeout=60)
        editor.idle()

    def summary(call: list[list[object]]) -> list[tuple[object, object, object]]:
        return [(kind, positive, label) for kind, positive, label, _ in call]

    def points(call: list[list[object]]) -> list[object]:
        return [point for *_, point in call]

    first, second, third = calls()[:3]
    assert summary(first) == [("point", True, "Object")]
    assert summary(second) == [("point", True, "Object"), ("point", False, "Object")]
    assert summary(third) == [("point", False, "Background")]  # negative="true" in the config
    # Pixels of the 640x480 image where the mouse clicked, within the editor's snapping.
    assert points(second) == [pytest.approx([160, 120], abs=2), pytest.approx([480, 360], abs=2)]
    assert points(third) == [pytest.approx([320, 240], abs=2)]
