"""What a model returns: logged when refused, real numbers of any type, JSON-safe, in the image.

Items 15 (refused output is logged), 16 (NumPy and other real numbers; what JSON cannot hold is
the model's error) and 18 (a swapped `image_size`) of the trust issue.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from relaxml import Context, LabelStudioModel, Prediction, Task
from relaxml._throttle import LogThrottle
from relaxml.labels.results import ResultBuilder, ResultError
from relaxml.prediction import json_safe, normalize, plain_number, real_number
from relaxml.testing import FakeLabelStudio

from .conftest import wait_for

CONFIGS = Path(__file__).parent / "fixtures" / "label_configs"
DETECTION = (CONFIGS / "computer-vision--object-detection-with-bounding-boxes.xml").read_text()
KEYPOINTS = (CONFIGS / "computer-vision--keypoints.xml").read_text()
POLYGONS = (CONFIGS / "computer-vision--semantic-segmentation-with-polygons.xml").read_text()
NER = (CONFIGS / "natural-language-processing--named-entity-recognition.xml").read_text()
PROJECT = 7


def squirrel(output: Any, **attrs: Any) -> type[LabelStudioModel]:
    """A model named Squirrel whose `predict` returns `output(tasks, context)`."""

    def predict(self: LabelStudioModel, tasks: list[Task], context: Context) -> Any:
        return output(tasks, context)

    return type("Squirrel", (LabelStudioModel,), {"predict": predict, **attrs})


def body(*ids: int, label_config: str = "<View/>") -> dict[str, Any]:
    tasks = [{"id": i, "data": {"text": f"task {i}"}, "project": PROJECT} for i in ids]
    return {"tasks": tasks, "project": f"{PROJECT}.1", "label_config": label_config}


def one_region(value: Any) -> Any:
    """A model output: one prediction per task whose only region's value.x is `value`."""
    region = {"from_name": "label", "to_name": "image", "type": "rectanglelabels"}
    return lambda tasks, context: [
        {"result": [{**region, "value": {"x": value, "y": 1.0}}], "score": 0.5} for _ in tasks
    ]


def output_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("relaxml.")
        and r.levelno >= logging.WARNING
        and "Squirrel" in r.getMessage()
    ]


# --- item 15: refused output is logged, at most once a minute per kind ----------------------


def test_wrong_count_is_logged_with_the_text_of_the_answer_once_a_minute(serve, caplog):
    client = serve(squirrel(lambda tasks, context: [None] * (len(tasks) + 1)))
    first = client.post("/predict", json=body(1))
    again = client.post("/predict", json=body(2, 3))
    assert first.status_code == again.status_code == 500
    assert first.json()["error"] == "model_output"
    detail = first.json()["detail"]
    assert detail.startswith("Squirrel.predict returned 2 entries for 1 tasks")
    lines = output_lines(caplog)
    assert len(lines) == 1  # the second request is the same kind of mistake, within a minute
    assert detail in lines[0]


def test_wrong_shape_and_unknown_label_in_error_mode_are_logged_per_kind(serve, caplog):
    def output(tasks: list[Task], context: Context) -> Any:
        if tasks[0].id == 1:
            return {"result": []}  # a dict, not a list
        region = {"from_name": "nope", "to_name": "image", "type": "choices", "value": {}}
        return [{"result": [region]} for _ in tasks]

    client = serve(squirrel(output), validate="error")
    shape = client.post("/predict", json=body(1))
    config = client.post("/predict", json=body(2, label_config=DETECTION))
    assert shape.status_code == config.status_code == 500
    assert "must return a list with one entry per task, got dict" in shape.json()["detail"]
    assert "from_name 'nope' is not a control" in config.json()["detail"]
    lines = output_lines(caplog)
    assert len(lines) == 2
    assert shape.json()["detail"] in lines[0]
    assert config.json()["detail"] in lines[1]


def test_log_throttle_allows_a_kind_again_after_its_interval():
    now = [0.0]
    throttle = LogThrottle(interval=60, max_kinds=2, clock=lambda: now[0])
    assert throttle.allow("a")
    assert throttle.allow("b")
    assert not throttle.allow("a")
    now[0] = 61.0
    assert throttle.allow("a")
    assert throttle.allow("c")  # bounded: "b", the oldest, is forgotten
    assert throttle.allow("b")


# --- item 16: every real number type; what JSON cannot hold is the model's error ------------


def test_numpy_scores_are_accepted_in_dicts_predictions_and_builders(serve):
    def output(tasks: list[Task], context: Context) -> Any:
        build = ResultBuilder(context.label_config)
        build.rectangle(
            np.array([64, 48, 192, 144], dtype=np.int64),
            "Car",
            image_size=(np.int64(640), np.int64(480)),
            score=np.float32(0.75),
            rotation=np.float32(0.0),
        )
        return [
            {"result": [], "score": np.float32(0.5)},
            Prediction(result=[], score=np.float64(0.25)),  # type: ignore[arg-type]
            {"result": [], "score": np.array(0.125)},
            {"result": [], "score": Fraction(1, 4)},
            build.prediction(),
            build.prediction(score=np.int64(1)),  # type: ignore[arg-type]
        ]

    client = serve(squirrel(output))
    answer = client.post("/predict", json=body(1, 2, 3, 4, 5, 6, label_config=DETECTION))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["score"] for r in results] == [0.5, 0.25, 0.125, 0.25, 0.75, 1.0]
    assert results[4]["result"][0]["score"] == 0.75
    assert results[4]["result"][0]["value"]["x"] == 10.0


def test_numpy_values_inside_result_become_plain_numbers(serve):
    region = {"from_name": "label", "to_name": "image", "type": "rectanglelabels"}

    def output(tasks: list[Task], context: Context) -> Any:
        value = {
            "x": np.float32(12.5),
            "y": np.int64(3),
            "width": np.array(7.0),
            "points": np.array([[1, 2], [3, 4]]),
            "closed": np.bool_(True),
        }
        return [{"result": [{**region, "value": value, "score": np.float16(0.5)}]} for _ in tasks]

    client = serve(squirrel(output))
    answer = client.post("/predict", json=body(1))
    assert answer.status_code == 200, answer.text
    item = answer.json()["results"][0]["result"][0]
    assert item["value"] == {
        "x": 12.5,
        "y": 3,
        "width": 7.0,
        "points": [[1, 2], [3, 4]],
        "closed": True,
    }
    assert item["score"] == 0.5


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (float("nan"), "result[0].value.x is nan: JSON has no NaN or infinity"),
        (np.float32("inf"), "result[0].value.x is inf: JSON has no NaN or infinity"),
        (b"\x00", "result[0].value.x has type bytes, which JSON cannot hold: decode it to a str"),
        ({1, 2}, "result[0].value.x has type set, which JSON cannot hold: make it a list"),
        (
            object(),
            "result[0].value.x has type object, which JSON cannot hold: use a str, number, bool, "
            "None, list or dict",
        ),
        ({(1, 2): "two"}, "result[0].value.x has a key (1, 2): JSON keys must be strings"),
    ],
)
def test_what_json_cannot_hold_is_a_model_output_error_naming_its_path(serve, caplog, value, says):
    client = serve(squirrel(one_region(value)))
    answer = client.post("/predict", json=body(1))
    assert answer.status_code == 500
    assert answer.json() == {"error": "model_output", "detail": f"Squirrel.predict entry 0: {says}"}
    assert any(says in line for line in output_lines(caplog))
    assert client.get("/health").json()["status"] == "UP"


def test_nan_and_infinite_scores_are_refused_naming_the_field(serve):
    for score in (float("nan"), np.float32("-inf"), 10**400, True, "0.5"):
        client = serve(squirrel(lambda tasks, context, s=score: [{"result": [], "score": s}]))
        answer = client.post("/predict", json=body(1))
        assert answer.status_code == 500, score
        assert answer.json()["error"] == "model_output"
        assert (
            "Squirrel.predict entry 0: 'score' must be a finite number" in answer.json()["detail"]
        )


def test_a_result_nested_or_looping_forever_is_a_model_output_error(serve):
    loop: dict[str, Any] = {}
    loop["self"] = loop
    client = serve(squirrel(one_region(loop)))
    answer = client.post("/predict", json=body(1))
    assert answer.status_code == 500
    assert answer.json()["error"] == "model_output"
    assert "nests deeper than 64 levels (or refers to itself)" in answer.json()["detail"]


@pytest.fixture
def fake() -> Iterator[FakeLabelStudio]:
    server = FakeLabelStudio(accept_unknown_tasks=True)
    yield server
    server.close()


def test_background_predictions_are_made_json_safe_before_they_are_stored(serve, fake):
    def output(tasks: list[Task], context: Context) -> Any:
        values = [float("nan") if t.data.get("bad") else np.float32(2.5) for t in tasks]
        return [one_region(v)([t], context)[0] for t, v in zip(tasks, values, strict=True)]

    client = serve(squirrel(output, delivery="background"))
    setup = {"project": f"{PROJECT}.1", "hostname": fake.url, "access_token": fake.api_key}
    assert client.post("/setup", json=setup).status_code == 200
    request = body(1, 2)
    request["tasks"][1]["data"]["bad"] = True
    answer = client.post("/predict", json=request).json()
    job = answer["job"]
    wait_for(lambda: client.get(f"/jobs/{job}").json()["state"] in ("done", "failed"))
    status = client.get(f"/jobs/{job}").json()
    assert (status["done"], status["failed"]) == (1, 1)
    assert status["errors"][0]["error"] == (
        "Squirrel.predict entry 0: result[0].value.x is nan: JSON has no NaN or infinity"
    )
    assert [p["result"][0]["value"]["x"] for p in fake.predictions] == [2.5]


def test_real_numbers_of_every_type_convert_and_others_do_not():
    assert plain_number(np.int64(3)) == 3
    assert type(plain_number(np.int64(3))) is int
    assert type(plain_number(np.float32(0.5))) is float
    assert plain_number(np.array(4)) == 4
    assert plain_number(Fraction(1, 2)) == 0.5
    assert plain_number(Decimal("0.5")) == 0.5
    not_numbers = (True, np.bool_(True), "1", b"1", None, [1], np.array([1.0]), 1j, np.complex64(1))
    for not_a_number in not_numbers:
        assert plain_number(not_a_number) is None, not_a_number
    assert real_number(np.float64("nan")) is None
    assert real_number(10**400) is None
    assert real_number(np.uint8(255)) == 255.0


def test_entries_that_serialize_are_returned_unchanged():
    entries = normalize([{"result": [{"value": {"x": 1}}], "score": 1}], 1, model_version="v",
                        source="Squirrel.predict")  # fmt: skip
    assert json_safe(entries, "Squirrel.predict") is entries
    converted = normalize(
        [[{"result": [{"value": {"x": np.float32(1)}}]}]], 1, model_version="v", source="S.send"
    )
    assert converted == [[{"result": [{"value": {"x": 1.0}}], "score": 0.0, "model_version": "v"}]]


# --- item 18: a swapped image_size ---------------------------------------------------------


def test_a_box_outside_the_image_suggests_a_swapped_image_size():
    build = ResultBuilder(DETECTION)
    # A 480-wide, 640-tall photo given as (height, width) = (640, 480)... and the reverse.
    with pytest.raises(ResultError) as error:
        build.rectangle((500, 100, 600, 200), "Car", image_size=(480, 640))
    message = str(error.value)
    assert "the xyxy box [500, 100, 600, 200] goes outside the image" in message
    assert "480x640 (width x height)" in message
    assert message.endswith("image_size is (width, height): did you pass (height, width)?")
    with pytest.raises(ResultError, match="did you pass"):
        build.rectangle((10, 500, 20, 100), "Car", image_size=(640, 480), format="xywh")
    assert build.result == []


def test_a_polygon_and_a_keypoint_outside_the_image_suggest_the_swap():
    with pytest.raises(ResultError, match=r"the polygon .* did you pass \(height, width\)\?"):
        ResultBuilder(POLYGONS).polygon(
            [(0, 0), (600, 10), (300, 300)], "Airplane", image_size=(480, 640)
        )
    with pytest.raises(ResultError, match=r"the keypoint \[620, 5\] .* is at x 620, y 5 pixels"):
        ResultBuilder(KEYPOINTS).keypoint((620, 5), "Face", image_size=(480, 640))


def test_a_region_past_the_image_that_no_swap_explains_has_no_hint():
    build = ResultBuilder(DETECTION)
    with pytest.raises(ResultError, match="goes outside the image") as error:
        build.rectangle((500, 100, 900, 200), "Car", image_size=(480, 640))
    assert "did you pass" not in str(error.value)
    with pytest.raises(ResultError, match="goes outside the image") as error:
        build.rectangle((0.5, 0.1, 1.3, 0.2), "Car", image_size=(480, 640), unit="fraction")
    assert "did you pass" not in str(error.value)


def test_regions_at_the_edge_within_tolerance_and_turned_boxes_are_accepted():
    build = ResultBuilder(DETECTION)
    build.rectangle((-3, -3, 643, 483), "Car", image_size=(640, 480))  # a detector's rounding
    build.rectangle((0, 0, 64, 48), "Car", image_size=(640, 480), rotation=45)  # crosses x=0
    build.rectangle((0, 0, 1, 1), "Car", image_size=(640, 480), unit="fraction")
    assert len(build.result) == 3


def test_a_swapped_image_size_in_predict_answers_the_hint_over_http(serve):
    def output(tasks: list[Task], context: Context) -> Any:
        build = ResultBuilder(context.label_config)
        build.rectangle((500, 100, 600, 200), "Car", image_size=(480, 640))
        return [build.prediction()]

    client = serve(squirrel(output))
    answer = client.post("/predict", json=body(1, label_config=DETECTION))
    assert answer.status_code == 500
    assert answer.json()["error"] == "model_error"
    assert answer.json()["detail"].endswith("did you pass (height, width)?")
    assert "x 125" not in answer.text
