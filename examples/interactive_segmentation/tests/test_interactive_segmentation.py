"""The interactive segmentation example, served: smart keypoints and boxes in, brush masks out.

Every image is drawn here, with fixed seeds: a textured orange object (noise, diagonal stripes,
darker spots) on a textured green background, and, in some scenes, a textured red-orange square
touching the object's right side, close enough in colour that a click on the object takes it
too. The README's IoU figures are recomputed by `measure()`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import pytest

from relaxml import check_prediction
from relaxml.labels import parse_prompts, rle_to_array

from ..model import InteractiveSegmentation, PreparedImage, prepare, segment

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
README = EXAMPLE / "README.md"

WIDTH, HEIGHT = 480, 360
SEEDS = (1, 2, 3)
OBJECT_COLOUR = (50, 110, 225)  # BGR: orange
NEIGHBOUR_COLOUR = (45, 92, 205)  # BGR: a redder, darker orange
BACKGROUND_COLOUR = (80, 150, 100)  # BGR: green
ON_OBJECT = (180, 170)  # x, y in pixels of a 480x360 scene
ON_NEIGHBOUR = (370, 185)


@dataclass(frozen=True)
class Scene:
    """A drawn image (BGR) and where its object and neighbour truly are."""

    pixels: np.ndarray
    object: np.ndarray
    neighbour: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def textured(rng: np.random.Generator, colour: tuple[int, int, int], shape: tuple[int, int]):
    """`colour` with fine noise and diagonal stripes."""
    noise = cv2.GaussianBlur(rng.normal(0, 22, (*shape, 3)), (0, 0), 1.0) * 1.6
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.asarray(colour, float) + noise + 12 * np.sin((xs + ys) / 5.0)[..., None]


def draw(seed: int, neighbour: bool, zoom: int = 1) -> Scene:
    """A scene of 480x360 pixels (times `zoom`)."""
    rng = np.random.default_rng(seed)
    shape = (HEIGHT * zoom, WIDTH * zoom)
    pixels = textured(rng, BACKGROUND_COLOUR, shape)
    thing = np.zeros(shape, np.uint8)
    cv2.ellipse(thing, (200 * zoom, 180 * zoom), (110 * zoom, 80 * zoom), 15, 0, 360, 1, -1)
    beside = np.zeros(shape, np.uint8)
    if neighbour:
        cv2.rectangle(beside, (280 * zoom, 110 * zoom), (420 * zoom, 260 * zoom), 1, -1)
        beside &= 1 - thing
        pixels[beside > 0] = textured(rng, NEIGHBOUR_COLOUR, shape)[beside > 0]
    fur = textured(rng, OBJECT_COLOUR, shape)
    spots = np.zeros(shape, np.uint8)
    for _ in range(40):
        centre = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        cv2.circle(spots, centre, int(rng.integers(4, 10)) * zoom, 1, -1)
    fur[spots > 0] = textured(rng, (40, 70, 150), shape)[spots > 0]
    pixels[thing > 0] = fur[thing > 0]
    return Scene(np.clip(pixels, 0, 255).astype(np.uint8), thing > 0, beside > 0)


def keypoint(x: float, y: float, size: tuple[int, int], positive: bool = True) -> dict[str, Any]:
    """A smart keypoint as Label Studio's editor sends it (an Alt-click is not positive)."""
    width, height = size
    value = {"x": x / width * 100, "y": y / height * 100, "width": 0.5}
    return {
        "from_name": "point",
        "to_name": "image",
        "type": "keypointlabels",
        "original_width": width,
        "original_height": height,
        "is_positive": positive,
        "value": {**value, "keypointlabels": ["Object"], "labels": ["Object"]},
    }


def rectangle(box: tuple[int, int, int, int], size: tuple[int, int]) -> dict[str, Any]:
    """A smart rectangle as Label Studio's editor sends it."""
    (width, height), (x0, y0, x1, y1) = size, box
    value = {
        "x": x0 / width * 100,
        "y": y0 / height * 100,
        "width": (x1 - x0) / width * 100,
        "height": (y1 - y0) / height * 100,
        "rotation": 0,
    }
    return {
        "from_name": "box",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": width,
        "original_height": height,
        "value": {**value, "rectanglelabels": ["Object"]},
    }


def around(mask: np.ndarray, margin: int = 8) -> tuple[int, int, int, int]:
    """A box `margin` pixels around the mask, as an annotator would draw it."""
    ys, xs = np.nonzero(mask)
    return xs.min() - margin, ys.min() - margin, xs.max() + 1 + margin, ys.max() + 1 + margin


def iou(found: np.ndarray, truth: np.ndarray) -> float:
    return float((found & truth).sum() / (found | truth).sum())


def covered(found: np.ndarray, truth: np.ndarray) -> float:
    return float((found & truth).sum() / truth.sum())


def write(folder: Path, name: str, scene: Scene) -> str:
    """Save the scene as a PNG under `folder`; the task data value that points to it."""
    assert cv2.imwrite(str(folder / name), scene.pixels)
    return f"/data/local-files/?d={name}"


def ask(client: Any, image: str, *items: dict[str, Any]) -> dict[str, Any]:
    """One interactive call (the prompts in `params.context.result`); its answer."""
    body: dict[str, Any] = {
        "tasks": [{"id": 1, "data": {"image": image}}],
        "project": "1.1",
        "label_config": LABEL_CONFIG,
    }
    if items:
        body["params"] = {"context": {"result": list(items)}}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    return results[0] if results else {}


def mask_of(prediction: dict[str, Any], size: tuple[int, int]) -> np.ndarray:
    """The brush mask of an answer, checked as Label Studio's editor reads it."""
    assert check_prediction(LABEL_CONFIG, prediction) == []
    [item] = prediction["result"]
    assert (item["type"], item["from_name"], item["to_name"]) == ("brushlabels", "mask", "image")
    assert item["value"]["brushlabels"] == ["Object"]
    assert (item["original_width"], item["original_height"]) == size
    return rle_to_array(item["value"]["rle"], *size)[:, :, 3] > 0


@pytest.fixture
def served(serve, tmp_path):
    """A served model reading images from `tmp_path` (Label Studio's local files)."""
    return serve(InteractiveSegmentation, local_files_root=str(tmp_path)), tmp_path


def test_a_positive_point_gets_a_brush_mask_of_the_object(served):
    client, folder = served
    scene = draw(1, neighbour=False)
    answer = ask(client, write(folder, "alone.png", scene), keypoint(*ON_OBJECT, scene.size))
    assert answer["model_version"] == "grabcut-1"
    assert iou(mask_of(answer, scene.size), scene.object) > 0.95


def test_a_negative_point_on_the_similar_neighbour_takes_it_out_of_the_mask(served):
    client, folder = served
    scene = draw(1, neighbour=True)
    image = write(folder, "neighbour.png", scene)
    first = mask_of(ask(client, image, keypoint(*ON_OBJECT, scene.size)), scene.size)
    assert covered(first, scene.object) > 0.95
    assert covered(first, scene.neighbour) > 0.95  # similar colours, touching: taken too
    negative = keypoint(*ON_NEIGHBOUR, scene.size, positive=False)  # an Alt-click
    answer = ask(client, image, keypoint(*ON_OBJECT, scene.size), negative)
    second = mask_of(answer, scene.size)
    assert covered(second, scene.neighbour) < 0.01
    assert iou(second, scene.object) > 0.95


def test_a_box_gets_the_object_inside_it(served):
    client, folder = served
    scene = draw(2, neighbour=True)
    image = write(folder, "box.png", scene)
    found = mask_of(ask(client, image, rectangle(around(scene.object), scene.size)), scene.size)
    assert iou(found, scene.object) > 0.95


def test_a_large_image_is_segmented_downscaled_and_answered_at_full_size(served):
    client, folder = served
    scene = draw(3, neighbour=False, zoom=2)  # 960x720, segmented at 512x384
    image = write(folder, "large.png", scene)
    x, y = ON_OBJECT
    found = mask_of(ask(client, image, keypoint(2 * x, 2 * y, scene.size)), scene.size)
    assert found.shape == (720, 960)
    assert iou(found, scene.object) > 0.9


class CountingDecodes(InteractiveSegmentation):
    """The example, counting the images it decodes (each `prepare` reads and decodes one)."""

    decoded: ClassVar[list[str]] = []

    def prepare(self, path: Path) -> PreparedImage:
        type(self).decoded.append(path.name)
        return super().prepare(path)


def test_every_click_on_an_image_after_the_first_reuses_its_decoded_copy(serve, tmp_path):
    client = serve(CountingDecodes, local_files_root=str(tmp_path))
    scene, other = draw(1, neighbour=True), draw(2, neighbour=False)
    image, second_image = write(tmp_path, "a.png", scene), write(tmp_path, "b.png", other)
    clicks = [keypoint(*ON_OBJECT, scene.size)]
    for point in (ON_NEIGHBOUR, (150, 200)):  # three clicks on one image
        ask(client, image, *clicks)
        clicks.append(keypoint(*point, scene.size, positive=point != ON_NEIGHBOUR))
    ask(client, image, *clicks)
    assert CountingDecodes.decoded == ["a.png"]
    ask(client, second_image, keypoint(*ON_OBJECT, other.size))
    ask(client, image, keypoint(*ON_OBJECT, scene.size))
    assert CountingDecodes.decoded == ["a.png", "b.png"]


def test_an_ordinary_call_gets_no_prediction(served):
    client, folder = served
    image = write(folder, "plain.png", draw(1, neighbour=False))
    answer = ask(client, image)
    assert not answer.get("result")


def test_bad_input_fails_the_call_with_a_message_saying_what_is_wrong(served):
    client, folder = served
    (folder / "notes.png").write_text("not an image")
    click = {"context": {"result": [keypoint(*ON_OBJECT, (WIDTH, HEIGHT))]}}
    body = {"tasks": [{"id": 1, "data": {"image": "/data/local-files/?d=notes.png"}}]}
    body |= {"project": "1.1", "params": click}
    no_brush = LABEL_CONFIG.replace("BrushLabels", "PolygonLabels")
    answer = client.post("/predict", json={**body, "label_config": no_brush})
    assert answer.status_code == 500
    assert "no <BrushLabels> on the <Image> 'image' that reads task data" in answer.json()["detail"]
    answer = client.post("/predict", json={**body, "label_config": LABEL_CONFIG})
    assert answer.status_code == 500
    assert "cannot decode notes.png as an image" in answer.json()["detail"]


def test_a_label_marked_negative_in_the_config_works_like_an_alt_click(served):
    client, folder = served
    config = LABEL_CONFIG.replace(
        '<Label value="Object" smart="true" background="#ff7f0e"/>\n  </KeyPointLabels>',
        '<Label value="Object" smart="true" background="#ff7f0e"/>\n'
        '    <Label value="Not this" negative="true"/>\n  </KeyPointLabels>',
    )
    assert 'value="Not this"' in config
    scene = draw(1, neighbour=True)
    negative = keypoint(*ON_NEIGHBOUR, scene.size)  # a plain click, with the negative label
    negative["value"]["keypointlabels"] = negative["value"]["labels"] = ["Not this"]
    image = write(folder, "labelled.png", scene)
    body = {"tasks": [{"id": 1, "data": {"image": image}}], "project": "1.1"}
    body |= {"label_config": config}
    body["params"] = {"context": {"result": [keypoint(*ON_OBJECT, scene.size), negative]}}
    [answer] = client.post("/predict", json=body).json()["results"]
    assert check_prediction(config, answer) == []
    [item] = answer["result"]
    assert item["value"]["brushlabels"] == ["Object"]
    found = rle_to_array(item["value"]["rle"], *scene.size)[:, :, 3] > 0
    assert covered(found, scene.neighbour) < 0.01
    assert iou(found, scene.object) > 0.95


# --- the README's figures ---------------------------------------------------------------------


def prompted(scene: Scene, *items: dict[str, Any]) -> np.ndarray:
    """The model's mask for these prompts, computed directly (no server)."""
    image = prepare(scene.pixels, InteractiveSegmentation.max_side)
    mask = segment(image, parse_prompts({"result": list(items)}, LABEL_CONFIG))
    assert mask is not None
    return mask


def measure() -> dict[str, float]:
    """Mean IoU with the truth over the scenes of `SEEDS`, per case of the README's table."""
    cases: dict[str, list[float]] = {}

    def add(case: str, value: float) -> None:
        cases.setdefault(case, []).append(value)

    for seed in SEEDS:
        alone, crowded = draw(seed, neighbour=False), draw(seed, neighbour=True)
        point = keypoint(*ON_OBJECT, alone.size)
        add("positive point, object alone", iou(prompted(alone, point), alone.object))
        first = prompted(crowded, point)
        add("positive point, with neighbour: object", iou(first, crowded.object))
        add(
            "positive point, with neighbour: object and neighbour",
            iou(first, crowded.object | crowded.neighbour),
        )
        negative = keypoint(*ON_NEIGHBOUR, crowded.size, positive=False)
        add(
            "positive and negative point: object",
            iou(prompted(crowded, point, negative), crowded.object),
        )
        box = rectangle(around(crowded.object), crowded.size)
        add("box, with neighbour: object", iou(prompted(crowded, box), crowded.object))
    return {case: float(np.mean(values)) for case, values in cases.items()}


def test_the_readme_figures_are_what_the_model_measures():
    quoted = dict(re.findall(r"^\| (.+?) \| (\d\.\d{4}) \|$", README.read_text(), re.MULTILINE))
    measured = measure()
    assert set(quoted) == set(measured)
    for case, value in measured.items():
        assert float(quoted[case]) == pytest.approx(value, abs=0.005), case


def test_the_readme_shows_the_bundled_config_and_its_links_resolve():
    readme = README.read_text()
    assert LABEL_CONFIG.strip() in readme
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", readme):
        assert (EXAMPLE / target).is_file(), target
