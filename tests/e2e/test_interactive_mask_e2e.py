"""A smart keypoint in Label Studio 1.23.2's editor gets a brush mask from a served model.

The project has an image, `KeyPointLabels smart="true"` and `BrushLabels` with the same label;
relaxml serves the interactive segmentation example
(`examples/interactive_segmentation/model.py:InteractiveSegmentation`, GrabCut from the points)
as the interactive backend, and the labeling page runs in headless Chromium with
Auto-Annotation on. The 320x240 image (`tests/support/mask_scene.py` `scene()`) is white with
a pure red 120x120 square joined to a darker red one, about 10 CIELAB units apart: a click in
the red square takes both (240x120 image pixels), an Alt-click (a negative point) in the
darker one takes it away (120x120 left). The mask's blue pixels on the editor's canvas must
cover those areas, scaled as the editor shows the image, within 3 canvas pixels at the edges
and 3% in count.

How the editor shows the answer (Label Studio 1.23.2): the keypoints stay regions of the
annotation, and the brush comes as a *suggestion* (`annotation.suggestions`, "1 suggestions"
with accept and reject buttons in the bottom bar), drawn on the canvas in its label's colour
before anyone accepts it. Each answer replaces the suggestions of the previous one, so the
mask of the second call (positive and negative point) takes the place of the first. With
"Auto-Accept Suggestions" on (off by default, and here) each answer would be added as a
region instead, and nothing would shrink. Accepting turns the suggestion into a `BrushLabels`
region of the label.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..support.browser import chromium_page, poll
from ..support.browser import unavailable_reason as browser_unavailable
from ..support.capture_interactive import Editor, open_labeling
from ..support.labelstudio import LabelStudio
from ..support.mask_scene import DARK_BOX, RED_BOX, encode_png, scene
from .conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "examples" / "interactive_segmentation" / "model.py"

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <KeyPointLabels name="kp" toName="image" smart="true">
    <Label value="Object" background="#00ff00"/>
  </KeyPointLabels>
  <BrushLabels name="mask" toName="image">
    <Label value="Object" background="#0000ff"/>
  </BrushLabels>
</View>"""

STATE = """
() => {
  const a = window.Htx.annotationStore.selected;
  const describe = (r) => [r.type, (r.labels || []).join(','), r.score];
  return {
    regions: a.regions.map(describe),
    suggestions: [...a.suggestions.values()].map(describe),
  };
}
"""

BLUE = """
() => {
  // The brush label's blue pixels on the editor's Konva canvases (the image is red and
  // white, the keypoints green): how many, and their bounding box in canvas pixels.
  let count = 0, x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (const canvas of document.querySelectorAll('.konvajs-content canvas')) {
    const {width, height} = canvas;
    const data = canvas.getContext('2d').getImageData(0, 0, width, height).data;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const i = (y * width + x) * 4;
        if (data[i + 3] && data[i + 2] > 150 && data[i] < 90 && data[i + 1] < 90) {
          count += 1;
          x0 = Math.min(x0, x); y0 = Math.min(y0, y);
          x1 = Math.max(x1, x); y1 = Math.max(y1, y);
        }
      }
    }
  }
  return count ? {count, box: [x0, y0, x1, y1]} : null;
}
"""

BOX_TOLERANCE = 3  # canvas pixels: the mask's edge and anti-aliasing
AREA_TOLERANCE = 0.03  # relative


@pytest.fixture
def browser_ready() -> None:
    reason = browser_unavailable()
    if reason is not None:
        raise unavailable(reason)


def create_project(ls: LabelStudio, backend_url: str) -> int:
    project = ls.create_project("relaxml interactive mask", CONFIG)
    ls.api(
        "POST",
        f"/api/projects/{project['id']}/import",
        files={"file": ("scene.png", encode_png(scene()), "image/png")},
    )
    ls.register_ml_backend(project["id"], backend_url, is_interactive=True)
    project_id: int = project["id"]
    return project_id


def expected(editor: Editor, box: tuple[int, int, int, int]) -> tuple[list[float], float]:
    """The canvas bounding box (first and last pixel) and area of image pixels `box`."""
    t = editor.t
    x0, y0, x1, y1 = box
    left, top = x0 * t["scaleX"] + t["offsetX"], y0 * t["scaleY"] + t["offsetY"]
    right, bottom = x1 * t["scaleX"] + t["offsetX"], y1 * t["scaleY"] + t["offsetY"]
    return [left, top, right - 1, bottom - 1], (right - left) * (bottom - top)


def until(page: Any, check: Callable[[], Any], timeout: float = 60) -> Any:
    """Call `check` until it returns something truthy, letting the page's events run between
    calls (Playwright delivers them only while it is called); fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        page.wait_for_timeout(100)
    return value


def mask_drawn(page: Any, previous: int | None = None) -> dict[str, Any]:
    """The blue pixels once they are drawn and steady (and differ from `previous` count)."""
    drawn: dict[str, Any] = until(
        page, lambda: (blue := page.evaluate(BLUE)) and blue["count"] != previous and blue
    )
    steady: dict[str, Any] = poll(lambda: page.evaluate(BLUE), timeout=10) or drawn
    return steady


def test_a_click_gets_a_mask_and_a_negative_click_shrinks_it(
    browser_ready, label_studio, backend_factory, free_port, tmp_path: Path
):
    ls = label_studio
    argv = [sys.executable, "-m", "relaxml", "serve", f"{MODEL}:InteractiveSegmentation"]
    argv += ["--host", "127.0.0.1", "--port", str(free_port)]
    env = {"PYTHONPATH": str(ROOT), "LABEL_STUDIO_URL": ls.url, "LABEL_STUDIO_API_KEY": ls.token}
    backend = backend_factory(argv, env, free_port)
    project_id = create_project(ls, backend.url)
    answered: list[str] = []

    def finished(request: Any) -> None:
        if "interactive-annotating" in request.url:  # the editor's call for a suggestion
            answered.append(request.url)

    with chromium_page(tmp_path / "chromium") as page:
        page.on("requestfinished", finished)
        editor = open_labeling(page, ls, project_id)

        def state() -> dict[str, Any]:
            regions: dict[str, Any] = page.evaluate(STATE)
            return regions

        # A positive click in the pure red square: both squares are within the fill's tolerance.
        editor.select("kp", "Object", True)
        editor.click(100, 120)
        editor.select("kp", "Object", True)  # the editor sends a region on the next event
        until(page, lambda: len(answered) >= 1)
        editor.idle()
        first = mask_drawn(page)
        first_state = state()
        page.screenshot(path=str(tmp_path / "positive.png"))

        # A negative (Alt-) click in the darker square: the mask shrinks to the pure red one.
        editor.click(220, 120, alt=True)
        editor.select("kp", "Object", True)
        until(page, lambda: len(answered) >= 2)
        editor.idle()
        second = mask_drawn(page, previous=first["count"])
        second_state = state()
        page.screenshot(path=str(tmp_path / "negative.png"))

        # Accepting the suggestion makes it a BrushLabels region of the label.
        page.click('[data-testid="bottombar-accept-suggestions-button"]', timeout=30_000)
        until(page, lambda: not state()["suggestions"], timeout=30)
        serialized = page.evaluate(
            "() => window.Htx.annotationStore.selected.serializeAnnotation()"
        )
        accepted = poll(lambda: page.evaluate(BLUE), timeout=10)

    # GrabCut gives no confidence, so the example's masks carry no score.
    keypoint, brush = ["keypointregion", "Object", None], ["brushregion", "Object", None]
    assert first_state == {"regions": [keypoint], "suggestions": [brush]}
    assert second_state == {"regions": [keypoint, keypoint], "suggestions": [brush]}

    both = (RED_BOX[0], RED_BOX[1], DARK_BOX[2], DARK_BOX[3])
    box, area = expected(editor, both)
    assert first["box"] == pytest.approx(box, abs=BOX_TOLERANCE), (first, editor.t)
    assert first["count"] == pytest.approx(area, rel=AREA_TOLERANCE), (first, area)
    box, area = expected(editor, RED_BOX)
    assert second["box"] == pytest.approx(box, abs=BOX_TOLERANCE), (second, editor.t)
    assert second["count"] == pytest.approx(area, rel=AREA_TOLERANCE), (second, area)

    brushes = [r for r in serialized if r["type"] == "brushlabels"]
    assert [(r["from_name"], r["value"]["brushlabels"]) for r in brushes] == [("mask", ["Object"])]
    assert accepted is not None
    assert accepted["count"] == pytest.approx(second["count"], rel=AREA_TOLERANCE)
