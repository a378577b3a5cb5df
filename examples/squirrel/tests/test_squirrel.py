"""The squirrel example (examples/squirrel), served and trained through HTTP on drawn scenes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from examples.conftest import wait_for
from relaxml import check_prediction
from relaxml.labels import box_to_percent, percent_to_box
from relaxml.testing import FakeLabelStudio, make_event

from ..model import Squirrel, target_of
from .scenes import HEIGHT, WIDTH, Box, Scene, draw_scene, iou

EXAMPLE = Path(__file__).resolve().parents[1]
LABEL_CONFIG = (EXAMPLE / "label_config.xml").read_text()
TRAIN_SEEDS = range(12)  # the measurement: train on these scenes ...
TEST_SEEDS = range(100, 120)  # ... and measure on these
TWO_LABELS = """<View>
  <Image name="photo" value="$picture"/>
  <RectangleLabels name="things" toName="photo">
    <Label value="Squirrel"/>
    <Label value="Trunk"/>
  </RectangleLabels>
</View>"""


def write_scenes(folder: Path, seeds: range | list[int]) -> dict[int, Scene]:
    """Draw the scenes of `seeds` into `folder` as PNGs (task id = seed + 1)."""
    scenes = {}
    for seed in seeds:
        scene = draw_scene(seed)
        (folder / f"scene-{seed}.png").write_bytes(scene.png())
        scenes[seed + 1] = scene
    return scenes


def task(task_id: int, key: str = "image") -> dict[str, Any]:
    return {"id": task_id, "data": {key: f"/data/local-files/?d=scene-{task_id - 1}.png"}}


def predict(client: Any, task_ids: list[int], config: str = LABEL_CONFIG, key: str = "image"):
    body = {"project": "7.1", "label_config": config, "tasks": [task(t, key) for t in task_ids]}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    results: list[dict[str, Any]] = answer.json()["results"]
    for result in results:
        assert check_prediction(config, result) == []
    return results


def boxes_of(result: dict[str, Any], label: str = "Squirrel") -> list[Box]:
    """The predicted boxes of `label`, back in pixels."""
    return [
        percent_to_box(item["value"], (WIDTH, HEIGHT))
        for item in result["result"]
        if item["value"]["rectanglelabels"] == [label]
    ]


def rectangles(boxes: dict[str, tuple[Box, ...]], control: str = "label", image: str = "image"):
    """An annotation's result: the boxes by label, as Label Studio stores them."""
    return [
        {
            "from_name": control,
            "to_name": image,
            "type": "rectanglelabels",
            "original_width": WIDTH,
            "original_height": HEIGHT,
            "value": {**box_to_percent(box, (WIDTH, HEIGHT)), "rectanglelabels": [label]},
        }
        for label, group in boxes.items()
        for box in group
    ]


def annotation_event(task_id: int, scene: Scene, action: str = "ANNOTATION_CREATED"):
    return {
        "action": action,
        "project": {"id": 7, "label_config": LABEL_CONFIG},
        "task": task(task_id),
        "annotation": {
            "id": 100 + task_id,
            "task": task_id,
            "result": rectangles({"Squirrel": scene.boxes}),
        },
    }


def best_ious(scene: Scene, found: list[Box]) -> list[float]:
    """For each true box, its best IoU with any predicted box."""
    return [max((iou(truth, box) for box in found), default=0.0) for truth in scene.boxes]


def test_untrained_model_finds_brown_blobs_as_squirrel_0(serve, tmp_path):
    scenes = write_scenes(tmp_path, [2])
    client = serve(Squirrel, local_files_root=str(tmp_path))
    assert client.get("/health").json()["model_version"] == "squirrel-0"
    (result,) = predict(client, [3])
    assert result["model_version"] == "squirrel-0"
    item = result["result"][0]
    assert (item["from_name"], item["to_name"], item["type"]) == (
        "label",
        "image",
        "rectanglelabels",
    )
    assert (item["original_width"], item["original_height"]) == (WIDTH, HEIGHT)
    scene, found = scenes[3], boxes_of(result)
    assert scene.kinds == ("brown", "brown", "grey")
    brown_in_the_open, brown_on_a_trunk, grey = best_ious(scene, found)
    assert brown_in_the_open > 0.9
    assert grey == 0.0  # the prior misses grey squirrels ...
    (trunk,) = scene.trunks  # ... and takes a trunk, with the squirrel on it, for one
    assert brown_on_a_trunk < 0.5
    assert max(iou(trunk, box) for box in found) > 0.3
    assert all(0 < i["score"] <= 1 for i in result["result"])


def test_annotations_train_squirrel_1_which_finds_grey_squirrels_and_survives_a_restart(
    serve, tmp_path
):
    scenes = write_scenes(tmp_path, [1, 2, 4])  # 2 and 5: ids of scenes with a grey squirrel
    client = serve(Squirrel, local_files_root=str(tmp_path), data_dir=str(tmp_path / "data"))
    (grey,) = best_ious(scenes[2], boxes_of(predict(client, [2])[0]))
    assert grey < 0.2  # the prior misses it (a trunk box may touch it)
    for _ in range(2):  # the same annotation twice changes nothing the second time
        answer = client.post("/webhook", json=annotation_event(3, scenes[3]))
        assert answer.status_code < 300, answer.text
    wait_for(lambda: client.get("/health").json()["model_version"] == "squirrel-1")
    wait_for(lambda: all(r["state"] != "running" for r in client.get("/jobs").json()["training"]))
    assert client.get("/versions").json()["versions"] == ["squirrel-0", "squirrel-1"]
    after = predict(client, [2, 5])
    assert [r["model_version"] for r in after] == ["squirrel-1", "squirrel-1"]
    for task_id, result in zip([2, 5], after, strict=True):
        assert min(best_ious(scenes[task_id], boxes_of(result))) > 0.8
    restarted = serve(Squirrel, local_files_root=str(tmp_path), data_dir=str(tmp_path / "data"))
    assert predict(restarted, [2, 5]) == after  # load() restores the colour counts


def test_measured_numbers_match_the_readme(serve, tmp_path):
    """Mean best IoU, recall and precision at IoU 0.5 on 20 held-out scenes, before and after
    training on 12 annotated ones (the legacy /train), as the README quotes them."""
    train = write_scenes(tmp_path, TRAIN_SEEDS)
    test = write_scenes(tmp_path, TEST_SEEDS)
    client = serve(Squirrel, local_files_root=str(tmp_path), delivery="inline")
    measured = {"squirrel-0": measure(predict(client, list(test)), test)}
    annotated = [
        {**task(t), "annotations": [{"result": rectangles({"Squirrel": s.boxes})}]}
        for t, s in train.items()
    ]
    body = {"project": "7.1", "label_config": LABEL_CONFIG, "annotations": annotated}
    assert client.post("/train", json=body).status_code < 300
    wait_for(lambda: client.get("/health").json()["model_version"] == "squirrel-1", timeout=60)
    measured["squirrel-1"] = measure(predict(client, list(test)), test)
    quoted = readme_numbers()
    for version, numbers in measured.items():
        assert numbers == pytest.approx(quoted[version], abs=0.005), (version, numbers)
    assert measured["squirrel-1"][0] > 0.7 > measured["squirrel-0"][0]


def measure(results: list[dict[str, Any]], scenes: dict[int, Scene]) -> tuple[float, ...]:
    """(mean best IoU, recall at IoU 0.5, precision at IoU 0.5) over every true box."""
    ious: list[float] = []
    predicted = 0
    for result, scene in zip(results, scenes.values(), strict=True):
        found = boxes_of(result)
        predicted += len(found)
        ious += best_ious(scene, found)
    hits = sum(best >= 0.5 for best in ious)
    return (sum(ious) / len(ious), hits / len(ious), hits / max(predicted, 1))


def readme_numbers() -> dict[str, tuple[float, ...]]:
    """The table rows of the README: | `version` (...) | iou | recall | precision |."""
    readme = (EXAMPLE / "README.md").read_text()
    rows = re.findall(
        r"^\| `(squirrel-\d)`[^|]*\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|$", readme, re.M
    )
    assert len(rows) == 2, rows
    return {version: tuple(float(n) for n in numbers) for version, *numbers in rows}


def test_two_labels_get_one_colour_model_each(serve, tmp_path):
    scenes = write_scenes(tmp_path, [0, 3])
    client = serve(Squirrel, local_files_root=str(tmp_path))
    result = {"Squirrel": scenes[1].boxes, "Trunk": scenes[1].trunks}
    body = {
        "project": "8.1",
        "label_config": TWO_LABELS,
        "annotations": [
            {
                "id": 1,
                "data": {"picture": task(1)["data"]["image"]},
                "annotations": [{"result": rectangles(result, "things", "photo")}],
            }
        ],
    }
    assert client.post("/train", json=body).status_code < 300
    wait_for(lambda: client.get("/health").json()["model_version"] == "squirrel-1")
    (answer,) = predict(client, [4], TWO_LABELS, key="picture")
    for label, truth in (("Squirrel", scenes[4].boxes), ("Trunk", scenes[4].trunks)):
        found = boxes_of(answer, label)
        assert len(found) == len(truth), label
        # a squirrel in front of a trunk cuts it short: 0.6
        assert min(max(iou(t, f) for f in found) for t in truth) > 0.6, label


def studio_with(studio: FakeLabelStudio, annotated: dict[int, list[dict[str, Any]]]) -> int:
    """Project 7 of `studio` with tasks `task(id)` and these annotations; its id."""
    studio.tasks.clear()
    project = studio.add_project(LABEL_CONFIG, id=7)
    for task_id, given in annotated.items():
        studio.add_task(project, task(task_id)["data"], id=task_id)
        for annotation in given:
            studio.annotate(task_id, **annotation)
    return project


def test_start_training_refits_on_the_latest_non_cancelled_annotations(tmp_path):
    scenes = write_scenes(tmp_path, [0, 1])
    done = {"result": rectangles({"Squirrel": scenes[1].boxes})}
    cancelled = {"was_cancelled": True, **done}
    empty = {"result": []}  # an image annotated as having no squirrel is an example too
    model = Squirrel()
    with FakeLabelStudio() as studio:

        def start(annotated: dict[int, list[dict[str, Any]]]) -> Any:
            project = studio_with(studio, annotated)
            return make_event(
                LABEL_CONFIG, project_id=project, label_studio=studio, local_files_root=tmp_path
            )

        assert model.fit(start({1: [done], 2: [cancelled]})) == "squirrel-1"
        assert list(model.examples) == [1]
        assert model.fit(start({1: [done], 2: [cancelled]})) is None  # nothing new
        assert model.fit(start({1: [done], 2: [done, empty]})) == "squirrel-2"
    assert sorted(model.examples) == [1, 2]
    assert model.examples[2].inside == {}


def test_unauthenticated_annotation_payloads_are_not_trained_on(tmp_path):
    scenes = write_scenes(tmp_path, [0])
    hook = annotation_event(1, scenes[1])
    carried = {"annotations": [hook["annotation"]], "tasks": [hook["task"]]}
    model = Squirrel()
    forged = make_event(LABEL_CONFIG, action="ANNOTATION_CREATED", authenticated=False, **carried)
    assert model.fit(forged) is None
    assert model.examples == {}
    stored = {"result": rectangles({"Squirrel": scenes[1].boxes[:1]})}
    with FakeLabelStudio() as studio:
        project = studio_with(studio, {1: [stored]})
        refit = make_event(
            LABEL_CONFIG,
            action="ANNOTATION_CREATED",
            authenticated=False,
            project_id=project,
            label_studio=studio,
            local_files_root=tmp_path,
            **carried,
        )
        assert model.fit(refit) == "squirrel-1"  # a refit from Label Studio's data, not the payload
    assert sum(model.examples[1].smallest.values()) > 0
    assert list(model.examples[1].inside) == ["Squirrel"]
    (box,) = json.loads(model.examples[1].signature)["boxes"]  # the stored annotation's box
    assert box[0] == "Squirrel"


def test_a_config_without_rectangle_labels_on_an_image_is_refused(serve):
    config = (
        '<View><Text name="t" value="$text"/>'
        '<Labels name="l" toName="t"><Label value="A"/></Labels></View>'
    )
    with pytest.raises(ValueError, match="add one"):
        target_of(config)
    client = serve(Squirrel)
    answer = client.post(
        "/predict", json={"label_config": config, "tasks": [{"id": 1, "data": {"text": "x"}}]}
    )
    assert answer.status_code >= 400
    assert "RectangleLabels" in answer.text


def test_readme_shows_the_bundled_config_and_its_links_resolve():
    readme = (EXAMPLE / "README.md").read_text()
    assert LABEL_CONFIG.strip() in readme
    assert "relaxml serve examples/squirrel/model.py:Squirrel" in readme
    for target in re.findall(r"\]\(([^)#:]+\.md)\)", readme):
        assert (EXAMPLE / target).is_file(), target
