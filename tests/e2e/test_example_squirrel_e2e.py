"""The squirrel example's active-learning loop in a real Label Studio, on uploaded images.

Eight drawn scenes are uploaded; Retrieve Predictions goes through background delivery (more
tasks than RELAXML_AUTO_INLINE_MAX); five scenes get their true boxes as annotations; Start
Training gives squirrel-1, whose predictions on the three others are far closer to the truth.
"""

from __future__ import annotations

from typing import Any

import requests

from examples.squirrel.tests.scenes import HEIGHT, WIDTH, Box, Scene, draw_scene, iou
from relaxml import check_prediction
from relaxml.labels import box_to_percent, percent_to_box

from ..support.example_flow import ROOT, ExampleProject, label_config, serve_example, upload

TARGET = f"{ROOT / 'examples' / 'squirrel' / 'model.py'}:Squirrel"
SEEDS = range(200, 208)
ANNOTATED = 5  # the first five tasks are annotated, the other three are held out


def rectangles(scene: Scene) -> list[dict[str, Any]]:
    """The scene's true boxes as an annotation's result, in percent, as the editor saves them."""
    return [
        {
            "from_name": "label",
            "to_name": "image",
            "type": "rectanglelabels",
            "original_width": WIDTH,
            "original_height": HEIGHT,
            "image_rotation": 0,
            "value": {**box_to_percent(box, (WIDTH, HEIGHT)), "rectanglelabels": ["Squirrel"]},
        }
        for box in scene.boxes
    ]


def mean_best_iou(predictions: dict[int, dict[str, Any]], scenes: dict[int, Scene]) -> float:
    """Over every true box of `scenes`, the mean of its best IoU with a predicted box."""
    ious = []
    for task_id, scene in scenes.items():
        found: list[Box] = [
            percent_to_box(item["value"], (WIDTH, HEIGHT))
            for item in predictions[task_id]["result"]
        ]
        ious += [max((iou(t, f) for f in found), default=0.0) for t in scene.boxes]
    return sum(ious) / len(ious)


def background_jobs(project: ExampleProject) -> int:
    jobs = requests.get(project.backend.url + "/jobs", timeout=5).json()["jobs"]
    return len(jobs)


def test_squirrel_learns_from_boxes_drawn_in_label_studio(label_studio, backend_factory, free_port):
    ls = label_studio
    config = label_config("squirrel")
    project_id = ls.create_project("relaxml squirrel", config)["id"]
    scenes = {
        upload(ls, project_id, f"scene-{seed}.png", scene.png(), "image/png"): scene
        for seed in SEEDS
        for scene in [draw_scene(seed)]
    }
    ids = list(scenes)
    assert len(ids) == len(SEEDS)
    project = serve_example(
        ls, backend_factory, free_port, project_id, TARGET, env={"RELAXML_AUTO_INLINE_MAX": "4"}
    )
    assert project.health()["model_version"] == "squirrel-0"

    before = project.retrieve(ids)  # exactly one squirrel-0 prediction per task
    assert background_jobs(project) == 1
    for prediction in before.values():
        assert prediction["model_version"] == "squirrel-0"
        assert check_prediction(config, prediction) == []

    for task_id in ids[:ANNOTATED]:
        ls.create_annotation(task_id, rectangles(scenes[task_id]))
    assert project.train() == "squirrel-1"
    runs = requests.get(project.backend.url + "/jobs", timeout=5).json()["training"]
    assert runs[0]["annotations"] == ANNOTATED

    after = project.retrieve(ids)
    assert background_jobs(project) == 2
    for prediction in after.values():
        assert prediction["model_version"] == "squirrel-1"
        assert check_prediction(config, prediction) == []
    held_out = {task_id: scenes[task_id] for task_id in ids[ANNOTATED:]}
    untrained, trained = mean_best_iou(before, held_out), mean_best_iou(after, held_out)
    assert trained > 0.7, (untrained, trained)
    assert trained > untrained + 0.3, (untrained, trained)
