"""`context.prompts` of a model served by `relaxml serve`, fed by Label Studio 1.23.2's editor.

The annotator's flow of tests/support/capture_interactive.py, with relaxml as the backend: a
smart keypoint, then an Alt-click (the editor's negative point), then a keypoint with the label
the config marks negative. The model writes down what `context.prompts` held on each call.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

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

        def sent(count: int, label: str) -> None:
            """The editor sends a region when the next thing happens on the page (here, choosing
            a label). A choice made while it still registers the click is lost, so choose again
            every few seconds until the call has come."""
            deadline = time.monotonic() + 60
            while True:
                editor.select("kp", label, True)
                wait = time.monotonic() + 5
                while len(calls()) < count and time.monotonic() < min(wait, deadline):
                    page.wait_for_timeout(100)  # keeps the page's handlers running
                if len(calls()) >= count:
                    editor.idle()
                    return
                if time.monotonic() >= deadline:
                    raise AssertionError(f"the editor sent {len(calls())} calls, not {count}")

        editor.select("kp", "Object", True)
        editor.click(160, 120)
        sent(1, "Object")
        editor.click(480, 360, alt=True)
        sent(2, "Background")
        editor.click(320, 240)
        sent(3, "Object")

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
