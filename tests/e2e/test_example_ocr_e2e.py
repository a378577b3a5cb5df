"""The OCR example (examples/ocr) in a real Label Studio: upload pages, predict, correct, train,
predict again with the learnt corrections."""

from __future__ import annotations

import io
from typing import Any

from examples.ocr.tests.pages import Page, render_page
from relaxml import check_prediction, parse_label_config

from ..support.example_flow import label_config, serve_example, upload

TRAIN_PAGE = ["Invoice 2041", "Qty 3 Amt 12.50", "Signed Jane Smith"]
WRITTEN = ["Invoice 2041", "Quantity 3 Amount 12.50", "Signed Jane Smith"]
LABELS = ["Text", "Text", "Handwriting"]
NEW_PAGES = [["Receipt 77", "Qty 8 Amt 99.00"], ["Order 12", "Approved Jane Smith"]]


def png(page: Page) -> bytes:
    buffer = io.BytesIO()
    page.image.save(buffer, format="PNG")
    return buffer.getvalue()


def annotated(page: Page) -> list[dict[str, Any]]:
    """What Label Studio's editor stores for a corrected line: the box, its label and its
    transcription, three items sharing the region's id."""
    width, height = page.image.size
    result = []
    for n, (box, text, label) in enumerate(zip(page.boxes, WRITTEN, LABELS, strict=True)):
        x0, y0, x1, y1 = box
        geometry = {
            "x": 100 * x0 / width,
            "y": 100 * y0 / height,
            "width": 100 * (x1 - x0) / width,
            "height": 100 * (y1 - y0) / height,
            "rotation": 0,
        }
        common = {"id": f"line{n}", "to_name": "image", "original_width": width}
        common["original_height"] = height
        result += [
            {**common, "from_name": "bbox", "type": "rectangle", "value": geometry},
            {
                **common,
                "from_name": "label",
                "type": "labels",
                "value": {**geometry, "labels": [label]},
            },
            {
                **common,
                "from_name": "transcription",
                "type": "textarea",
                "value": {**geometry, "text": [text]},
            },
        ]
    return result


def lines(prediction: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(transcription, label) of each predicted region, in order."""
    items = prediction["result"]
    texts = {i["id"]: i["value"]["text"][0] for i in items if i["type"] == "textarea"}
    boxes = [i for i in items if i["type"] != "textarea"]
    assert len(boxes) == len(texts)
    return [(texts[box["id"]], box["value"]["rectanglelabels"]) for box in boxes]


def test_ocr_example_learns_corrections_from_annotations(
    label_studio, backend_factory, free_port, tmp_path
):
    ls = label_studio
    config = label_config("ocr")
    project_id = ls.create_project("relaxml example ocr", config)["id"]
    train = render_page(TRAIN_PAGE)
    train_id = upload(ls, project_id, "train.png", png(train), "image/png")
    new_ids = [
        upload(ls, project_id, f"new-{n}.png", png(render_page(page)), "image/png")
        for n, page in enumerate(NEW_PAGES)
    ]
    ids = [train_id, *new_ids]
    project = serve_example(
        ls,
        backend_factory,
        free_port,
        project_id,
        "examples/ocr/model.py:OCR",
        env={"RELAXML_DATA_DIR": str(tmp_path / "backend")},
    )
    assert project.health()["model_version"] == "ocr-0"

    first = project.retrieve(ids)  # exactly one stored prediction per task, of ocr-0
    parsed = parse_label_config(config)
    for prediction in first.values():
        assert prediction["model_version"] == "ocr-0"
        assert check_prediction(parsed, prediction) == []
    assert [text for text, _ in lines(first[train_id])] == TRAIN_PAGE
    assert lines(first[new_ids[0]]) == [("Receipt 77", ["Text"]), ("Qty 8 Amt 99.00", ["Text"])]
    assert lines(first[new_ids[1]])[1] == ("Approved Jane Smith", ["Text"])

    ls.create_annotation(train_id, annotated(train))
    version = project.train()
    assert version == "ocr-1"

    second = project.retrieve(ids)  # the new version re-predicts every task
    for prediction in second.values():
        assert prediction["model_version"] == "ocr-1"
        assert check_prediction(parsed, prediction) == []
    assert [text for text, _ in lines(second[train_id])] == WRITTEN
    assert lines(second[new_ids[0]]) == [
        ("Receipt 77", ["Text"]),
        ("Quantity 8 Amount 99.00", ["Text"]),
    ]
    assert lines(second[new_ids[1]])[1] == ("Approved Jane Smith", ["Handwriting"])
