"""Label Studio's labeling page draws a rectangle and a brush mask built with relaxml.

A real Label Studio, a real uploaded image, a prediction posted through the API, and the
labeling page opened in headless Chromium: the editor lists both regions in its panel, and its
canvases hold red (rectangle) and blue (brush) pixels exactly where the prediction puts them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from relaxml import ResultBuilder

from ..support.browser import CANVAS_BOXES, IMAGE_TRANSFORM, chromium_page, log_in, png, poll
from ..support.browser import unavailable_reason as browser_unavailable
from ..support.labelstudio import LabelStudio
from .conftest import unavailable

WIDTH, HEIGHT = 320, 240
CAR = (40, 120, 200, 220)  # x0, y0, x1, y1 in image pixels
SKY_ROWS = 80  # the brush covers the top 80 rows

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Car" background="#ff0000"/>
  </RectangleLabels>
  <BrushLabels name="mask" toName="image">
    <Label value="Sky" background="#0000ff"/>
  </BrushLabels>
</View>"""

TOLERANCE = 3  # canvas pixels: stroke width and anti-aliasing


@pytest.fixture
def browser_ready() -> None:
    reason = browser_unavailable()
    if reason is not None:
        raise unavailable(reason)


def task_with_prediction(ls: LabelStudio) -> tuple[int, int]:
    project = ls.create_project("relaxml editor render", CONFIG)
    upload = ls.api(
        "POST",
        f"/api/projects/{project['id']}/import",
        params={"return_task_ids": "true"},
        files={"file": ("street.png", png(WIDTH, HEIGHT, (128, 128, 128)), "image/png")},
    ).json()
    [task_id] = upload["task_ids"]
    build = ResultBuilder(CONFIG)
    build.rectangle(CAR, "car", image_size=(WIDTH, HEIGHT), score=0.9)
    build.brush([[y < SKY_ROWS for _ in range(WIDTH)] for y in range(HEIGHT)], "sky", score=0.8)
    body = {"task": task_id, "result": build.result, "score": 0.85, "model_version": "render-1"}
    ls.api("POST", "/api/predictions/", json=body)
    return project["id"], task_id


def test_rectangle_and_brush_are_drawn(label_studio, browser_ready, tmp_path: Path):
    ls = label_studio
    project_id, _ = task_with_prediction(ls)
    with chromium_page(tmp_path / "chromium") as page:
        log_in(page, ls.url, ls.username, ls.password)
        # Opening the task list and clicking the row is more reliable than the task URL.
        page.goto(f"{ls.url}/projects/{project_id}/data")
        page.click('[data-testid="table-row"]', timeout=60_000)
        page.wait_for_selector(".lsf-outliner-item", timeout=60_000)

        listed = poll(lambda: page.locator(".lsf-outliner-item").all_inner_texts())
        assert len(listed) == 2, listed
        assert "Car" in listed[0]
        assert "0.90" in listed[0]
        assert "Sky" in listed[1]
        assert "0.80" in listed[1]

        # The brush decodes asynchronously: wait until both colours are on the canvases.
        boxes = poll(lambda: page.evaluate(CANVAS_BOXES), timeout=60)
        page.screenshot(path=str(tmp_path / "editor.png"))
        assert boxes is not None, "no red and blue pixels on the editor's canvases"
        t = page.evaluate(IMAGE_TRANSFORM, "image")

    def to_canvas(x: float, y: float) -> tuple[float, float]:
        return x * t["scaleX"] + t["offsetX"], y * t["scaleY"] + t["offsetY"]

    left, top = to_canvas(CAR[0], CAR[1])
    right, bottom = to_canvas(CAR[2], CAR[3])
    red = boxes["red"]
    assert red[:4] == pytest.approx([left, top, right, bottom], abs=TOLERANCE), (red, t)

    # The sky spans the image's width (clipped to the canvas) and ends at row SKY_ROWS.
    blue = boxes["blue"]
    _, sky_bottom = to_canvas(0, SKY_ROWS)
    assert blue[3] == pytest.approx(sky_bottom, abs=TOLERANCE), (blue, t)
    assert blue[1] == pytest.approx(max(0.0, to_canvas(0, 0)[1]), abs=TOLERANCE), (blue, t)
    # Its pixels fill its box: a solid band, not a smear of decoding garbage.
    area = (blue[2] - blue[0] + 1) * (blue[3] - blue[1] + 1)
    assert blue[4] / area > 0.99
