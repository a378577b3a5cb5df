"""Result builders over Label Studio's template configs: one test per control type, and errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from relaxml.labels.labelconfig import parse_label_config
from relaxml.labels.results import ResultBuilder, ResultError, UnknownLabelError
from relaxml.labels.rle import rle_to_mask
from relaxml.labels.validation import check_prediction
from relaxml.prediction import Prediction

CONFIGS = Path(__file__).parent / "fixtures" / "label_configs"


def builder(name: str) -> ResultBuilder:
    return ResultBuilder((CONFIGS / f"{name}.xml").read_text())


def assert_valid(build: ResultBuilder) -> None:
    problems = check_prediction(build.config, {"result": build.result})
    assert problems == []


def test_choices():
    build = builder("computer-vision--image-classification")
    item = build.choices("weapons", score=0.8)
    assert item == {
        "id": item["id"],
        "from_name": "choice",
        "to_name": "image",
        "type": "choices",
        "value": {"choices": ["Weapons"]},
        "score": 0.8,
    }
    assert_valid(build)
    with pytest.raises(ResultError, match=r'allows one choice.*choice="multiple"'):
        build.choices(["Weapons", "Violence"])
    with pytest.raises(
        UnknownLabelError, match=r"'Cats' is not a label of Choices 'choice'.*<Choice"
    ):
        build.choices("Cats")


def test_rectangles_from_every_box_format():
    build = builder("computer-vision--object-detection-with-bounding-boxes")
    a = build.rectangle((64, 48, 192, 144), "car", image_size=(640, 480), score=0.9)
    b = build.rectangle((64, 48, 128, 96), "Car", image_size=(640, 480), format="xywh")
    c = build.rectangle((128, 96, 128, 96), "CAR", image_size=(640, 480), format="cxcywh")
    assert a["value"] == b["value"] == c["value"]
    assert a["value"] == {
        "x": 10.0,
        "y": 10.0,
        "width": 20.0,
        "height": 20.0,
        "rotation": 0.0,
        "rectanglelabels": ["Car"],
    }
    assert (a["type"], a["from_name"], a["to_name"]) == ("rectanglelabels", "label", "image")
    assert (a["original_width"], a["original_height"], a["image_rotation"]) == (640, 480, 0)
    # Same content, same stable id, made unique within the prediction.
    assert b["id"] == f"{a['id']}-2"
    assert c["id"] == f"{a['id']}-3"
    again = builder("computer-vision--object-detection-with-bounding-boxes")
    assert again.rectangle((64, 48, 192, 144), "car", image_size=(640, 480), score=0.9) == a
    rotated = build.rectangle((0, 0, 64, 48), "Airplane", image_size=(640, 480), rotation=45)
    assert rotated["value"]["rotation"] == 45
    assert_valid(build)
    with pytest.raises(ResultError, match="needs a label"):
        build.rectangle((0, 0, 1, 1), None, image_size=(10, 10))
    with pytest.raises(ResultError, match="negative width"):
        build.rectangle((5, 5, 1, 1), "Car", image_size=(10, 10))
    with pytest.raises(ResultError, match="no control of type polygonlabels, polygon"):
        build.polygon([(0, 0), (1, 0), (1, 1)], "Car", image_size=(10, 10))


def test_polygons_in_percent():
    build = builder("computer-vision--semantic-segmentation-with-polygons")
    item = build.polygon([(0, 0), (320, 0), (320, 240)], "Airplane", image_size=(640, 480))
    assert item["value"] == {
        "points": [[0.0, 0.0], [50.0, 0.0], [50.0, 50.0]],
        "closed": True,
        "polygonlabels": ["Airplane"],
    }
    same = build.polygon(
        [(0, 0), (0.5, 0), (0.5, 0.5)], "Airplane", image_size=(640, 480), unit="fraction"
    )
    assert same["value"] == item["value"]
    assert_valid(build)
    with pytest.raises(ResultError, match="at least 3 points"):
        build.polygon([(0, 0), (1, 1)], "Airplane", image_size=(10, 10))


def test_keypoints():
    build = builder("computer-vision--keypoints")
    item = build.keypoint((100, 50), "nose", image_size=(200, 100), width=0.5)
    assert item["value"] == {"x": 50.0, "y": 50.0, "width": 0.5, "keypointlabels": ["Nose"]}
    assert (item["from_name"], item["to_name"]) == ("kp-1", "img-1")
    assert_valid(build)


def test_ellipses_and_unlabelled_tools():
    build = ResultBuilder(
        """<View><Image name="img" value="$image"/>
        <EllipseLabels name="ell" toName="img"><Label value="Cell"/></EllipseLabels>
        <Rectangle name="rect" toName="img"/><KeyPoint name="kp" toName="img"/>
        </View>"""
    )
    item = build.ellipse((50, 25), (10, 5), "cell", image_size=(100, 50), rotation=30)
    assert item["type"] == "ellipselabels"
    assert item["value"] == {
        "x": 50.0,
        "y": 50.0,
        "radiusX": 10.0,
        "radiusY": 10.0,
        "rotation": 30.0,
        "ellipselabels": ["Cell"],
    }
    plain = build.rectangle((0, 0, 10, 10), image_size=(100, 50))
    assert plain["type"] == "rectangle"
    assert "rectanglelabels" not in plain["value"]
    assert build.keypoint((1, 1), image_size=(100, 50))["type"] == "keypoint"
    assert_valid(build)
    with pytest.raises(ResultError, match="has no labels"):
        build.rectangle((0, 0, 10, 10), "Cell", image_size=(100, 50))


def test_brush_from_numpy_and_lists():
    build = builder("computer-vision--semantic-segmentation-with-masks")
    mask = np.zeros((3, 5), dtype=np.float32)
    mask[1, 1:4] = 0.7
    item = build.brush(mask, "car", score=0.5)
    assert item["type"] == "brushlabels"
    assert item["value"]["format"] == "rle"
    assert item["value"]["brushlabels"] == ["Car"]
    assert (item["original_width"], item["original_height"]) == (5, 3)
    assert rle_to_mask(item["value"]["rle"], 5, 3) == [
        [0, 0, 0, 0, 0],
        [0, 255, 255, 255, 0],
        [0, 0, 0, 0, 0],
    ]
    as_list = build.brush((mask > 0).tolist(), "Car", score=0.5, image_size=(5, 3))
    assert as_list["value"] == item["value"]
    assert_valid(build)
    with pytest.raises(ResultError, match="5x3 pixels but image_size is 6x3"):
        build.brush(mask, "Car", image_size=(6, 3))
    with pytest.raises(ResultError, match="2-D"):
        build.brush(np.zeros((2, 2, 3)), "Car")
    with pytest.raises(ResultError, match="at least one row"):
        build.brush([], "Car")


def test_text_spans_and_relations():
    build = builder("natural-language-processing--relation-extraction")
    text = "Microsoft was founded by Bill Gates"
    org = build.span(0, 9, "organization", text=text[0:9], score=0.9)
    person = build.span(25, 35, "Person", text=text[25:35])
    assert org["value"] == {"start": 0, "end": 9, "text": "Microsoft", "labels": ["Organization"]}
    link = build.relation(org, person["id"], "org:founded_by")
    assert link == {
        "from_id": org["id"],
        "to_id": person["id"],
        "type": "relation",
        "direction": "right",
        "labels": ["org:founded_by"],
    }
    assert_valid(build)
    with pytest.raises(UnknownLabelError, match="not a <Relation>"):
        build.relation(org, person, "married_to")
    with pytest.raises(ResultError, match="no region with id 'zzz'"):
        build.relation(org, "zzz")
    with pytest.raises(ResultError, match="direction"):
        build.relation(org, person, direction="up")
    with pytest.raises(ResultError, match="0 <= start <= end"):
        build.span(5, 2, "Person")
    with pytest.raises(ResultError, match="at least one label"):
        build.span(0, 1, None)


def test_ner_span_and_object_type_checks():
    build = builder("natural-language-processing--named-entity-recognition")
    assert build.span(0, 4, "per")["value"]["labels"] == ["PER"]
    with pytest.raises(ResultError, match="a text; this builder is for audio"):
        build.audio_segment(0, 1, "PER")


def test_html_spans():
    build = builder("structured-data-parsing--html-entity-recognition")
    item = build.html_span(
        "/p[1]/text()[1]", "/p[1]/text()[1]", "author", start_offset=0, end_offset=5, text="Alice"
    )
    assert item["type"] == "hypertextlabels"
    assert item["value"] == {
        "start": "/p[1]/text()[1]",
        "end": "/p[1]/text()[1]",
        "startOffset": 0,
        "endOffset": 5,
        "text": "Alice",
        "hypertextlabels": ["Author"],
    }
    assert_valid(build)
    with pytest.raises(ResultError, match="start_offset"):
        build.html_span("/p", "/p", "Author", start_offset=-1, end_offset=2)


def test_audio_segments_with_per_region_transcription():
    build = builder("audio-speech-processing--speech-transcription")
    segment = build.audio_segment(1.5, 3.25, "Speech", channel=0, score=0.7)
    assert segment["value"] == {"start": 1.5, "end": 3.25, "channel": 0, "labels": ["Speech"]}
    said = build.textarea(["hello there"], region=segment)
    assert said["id"] == segment["id"]
    assert said["value"] == {"start": 1.5, "end": 3.25, "channel": 0, "text": ["hello there"]}
    build.choices("Positive")
    assert_valid(build)
    with pytest.raises(ResultError, match="start <= end"):
        build.audio_segment(3, 1, "Speech")


def test_per_region_textarea_on_a_rectangle():
    build = builder("community-contributions--ocr-invoices-pre-ner-bio-format")
    box = build.rectangle((10, 20, 110, 60), "O", image_size=(200, 100))
    text = build.textarea("TOTAL 12.00", region=box["id"], score=0.6)
    assert text["id"] == box["id"]
    assert text["type"] == "textarea"
    assert text["value"] == {
        "x": 5.0,
        "y": 20.0,
        "width": 50.0,
        "height": 40.0,
        "rotation": 0.0,
        "text": ["TOTAL 12.00"],
    }
    assert text["original_width"] == 200
    assert_valid(build)
    with pytest.raises(ResultError, match="labels 'image', not 'other'"):
        build.textarea("x", region=box, to_name="other")


def test_textarea_number_rating_datetime():
    build = ResultBuilder(
        """<View><Text name="t" value="$text"/>
        <TextArea name="summary" toName="t"/>
        <Number name="n" toName="t" min="0" max="10"/>
        <Rating name="r" toName="t" maxRating="10"/>
        <DateTime name="when" toName="t"/>
        <DateTime name="day" toName="t" only="date"/>
        <DateTime name="hour" toName="t" only="time"/>
        <DateTime name="year" toName="t" only="year"/>
        <DateTime name="fmt" toName="t" format="%d.%m.%Y"/>
        </View>"""
    )
    assert build.textarea("short")["value"] == {"text": ["short"]}
    assert build.number(7.5)["value"] == {"number": 7.5}
    assert build.rating(9)["value"] == {"rating": 9}
    moment = dt.datetime(2024, 3, 9, 14, 30)
    assert build.datetime(moment, from_name="when")["value"] == {"datetime": "2024-03-09T14:30"}
    assert build.datetime(moment, from_name="day")["value"] == {"datetime": "2024-03-09"}
    assert build.datetime(moment, from_name="hour")["value"] == {"datetime": "14:30"}
    assert build.datetime(moment, from_name="year")["value"] == {"datetime": "2024"}
    assert build.datetime(dt.date(2024, 3, 9), from_name="fmt")["value"] == {
        "datetime": "09.03.2024"
    }
    assert build.datetime("2020-01-01", from_name="day")["value"] == {"datetime": "2020-01-01"}
    assert_valid(build)
    with pytest.raises(ResultError, match="max=10, got 11"):
        build.number(11)
    with pytest.raises(ResultError, match="finite"):
        build.number(float("nan"))
    with pytest.raises(ResultError, match=r"integer 0\.\.10"):
        build.rating(11)
    with pytest.raises(ResultError, match="several datetime controls"):
        build.datetime("x")
    with pytest.raises(ResultError, match="needs strings"):
        build.textarea([1])  # type: ignore[list-item]


def test_taxonomy():
    build = builder("natural-language-processing--taxonomy")
    item = build.taxonomy([["eukarya", "HUMAN"], ["Archaea"]], score=0.4)
    assert item["value"] == {"taxonomy": [["Eukarya", "Human"], ["Archaea"]]}
    assert_valid(build)
    with pytest.raises(UnknownLabelError, match=r"'Dog' is not under Eukarya.*Human, Oppossum"):
        build.taxonomy([["Eukarya", "Dog"]])
    with pytest.raises(ResultError, match="list of paths"):
        build.taxonomy(["Eukarya", "Human"])  # type: ignore[list-item]


def test_time_series_spans():
    build = builder("time-series-analysis--activity-recognition")
    item = build.timeseries_span(10, 25.5, "run")
    assert item["value"] == {
        "start": 10,
        "end": 25.5,
        "instant": False,
        "timeserieslabels": ["Run"],
    }
    when = build.timeseries_span("2024-01-01 00:00:00.000", "2024-01-01 00:00:00.000", "Walk")
    assert when["value"]["instant"] is True
    assert_valid(build)
    with pytest.raises(ResultError, match="both be numbers or both be strings"):
        build.timeseries_span(1, "2", "Run")


def test_several_controls_pick_by_label_or_from_name():
    build = ResultBuilder(
        """<View><Image name="img" value="$image"/>
        <RectangleLabels name="vehicles" toName="img"><Label value="Car"/></RectangleLabels>
        <RectangleLabels name="people" toName="img"><Label value="Person"/></RectangleLabels>
        </View>"""
    )
    assert build.rectangle((0, 0, 1, 1), "car", image_size=(10, 10))["from_name"] == "vehicles"
    assert build.rectangle((0, 0, 1, 1), "person", image_size=(10, 10))["from_name"] == "people"
    with pytest.raises(UnknownLabelError, match=r"no rectanglelabels, rectangle control has"):
        build.rectangle((0, 0, 1, 1), "dog", image_size=(10, 10))
    twins = ResultBuilder(
        """<View><Image name="img" value="$image"/>
        <RectangleLabels name="a" toName="img"><Label value="Car"/></RectangleLabels>
        <RectangleLabels name="b" toName="img"><Label value="Car"/></RectangleLabels>
        </View>"""
    )
    with pytest.raises(ResultError, match=r"several rectanglelabels, rectangle controls \('a'"):
        twins.rectangle((0, 0, 1, 1), "Car", image_size=(10, 10))
    assert (
        twins.rectangle((0, 0, 1, 1), "Car", image_size=(10, 10), from_name="b")["from_name"] == "b"
    )
    with pytest.raises(ResultError, match="is not one of: choices"):
        build.choices("x", from_name="people")


def test_predicted_values_and_dynamic_labels():
    build = ResultBuilder(
        """<View><Image name="img" value="$image"/><Text name="t" value="$t"/>
        <RectangleLabels name="box" toName="img">
          <Label value="Vehicle" predicted_values="car,truck,bus"/>
        </RectangleLabels>
        <Choices name="opts" toName="t" value="$options" choice="multiple"/>
        </View>"""
    )
    assert build.rectangle((0, 0, 1, 1), "bus", image_size=(2, 2))["value"]["rectanglelabels"] == [
        "Vehicle"
    ]
    assert build.choices(["anything", "goes"])["value"] == {"choices": ["anything", "goes"]}
    assert_valid(build)


def test_to_name_for_controls_with_several_objects():
    build = builder("community-contributions--breast-cancer-mammogram-classification")
    assert build.choices("1 - negative", from_name="birads_left")["to_name"] == "left_cc"
    item = build.choices("1 - negative", from_name="birads_left", to_name="right_mlo")
    assert item["to_name"] == "right_mlo"
    with pytest.raises(ResultError, match="does not label 'nowhere'"):
        build.choices("1 - negative", from_name="birads_left", to_name="nowhere")


def test_prediction_and_scores():
    build = builder("computer-vision--image-classification")
    build.choices("Violence", score=1)
    assert len(build) == 1
    assert list(build) == build.result
    prediction = build.prediction(model_version="v2")
    assert prediction == Prediction(result=build.result, score=None, model_version="v2")
    assert prediction.result is not build.result
    with pytest.raises(ResultError, match="score must be finite"):
        build.choices("Violence", score=float("inf"))
    with pytest.raises(ResultError, match="score must be a number"):
        build.choices("Violence", score="high")  # type: ignore[arg-type]


def test_scores_outside_0_1_are_refused_and_rounding_is_clamped():
    build = builder("computer-vision--image-classification")
    with pytest.raises(ResultError, match=r"score must be between 0 and 1 .* got 1\.5"):
        build.choices("Violence", score=1.5)
    with pytest.raises(ResultError, match="score must be between 0 and 1"):
        build.choices("Violence", score=-0.01)
    assert build.choices("Violence", score=np.float32(1.0000001))["score"] == 1.0
    assert build.choices("Violence", score=-1e-9)["score"] == 0.0
    with pytest.raises(ResultError, match="score must be between 0 and 1"):
        build.prediction(score=1.5)
    assert build.prediction(score=1).score == 1.0
    assert_valid(build)


SHAPES = """<View>
  <Image name="image" value="$image"/>
  <Rectangle name="box" toName="image"/>
  <Ellipse name="ellipse" toName="image"/>
  <KeyPoint name="point" toName="image"/>
  <Polygon name="polygon" toName="image"/>
</View>"""


def test_rounding_past_the_image_is_clipped_so_label_studio_takes_the_region():
    build = ResultBuilder(SHAPES)
    box = build.rectangle((-1, -0.5, 101, 100.5), image_size=(100, 100))["value"]
    assert (box["x"], box["y"], box["width"], box["height"]) == (0, 0, 100, 100)
    inner = build.rectangle((10, 20, 30, 40), image_size=(100, 100))["value"]
    assert (inner["x"], inner["y"], inner["width"], inner["height"]) == (10, 20, 20, 20)
    assert build.keypoint((-0.5, 100.5), image_size=(100, 100))["value"] == {"x": 0, "y": 100}
    polygon = build.polygon([(-1, 0), (101, 0), (50, 100.9)], image_size=(100, 100))
    assert polygon["value"]["points"] == [[0, 0], [100, 0], [50, 100]]
    ellipse = build.ellipse((100.5, 50), (50.5, 10), image_size=(100, 100))["value"]
    assert (ellipse["x"], ellipse["radiusX"], ellipse["radiusY"]) == (100, 50, 10)
    turned = build.rectangle((0, 0, 100.5, 10), image_size=(100, 100), format="xywh", rotation=30)
    assert turned["value"]["width"] == 100
    assert_valid(build)


def test_a_turned_box_may_cross_the_image_edge():
    build = ResultBuilder(SHAPES)
    turned = build.rectangle((3, 50, 20, 10), image_size=(100, 100), format="cxcywh", rotation=30)
    assert turned["value"]["x"] < 0
    assert_valid(build)


def test_an_ellipse_radius_over_half_the_image_is_refused():
    build = ResultBuilder(SHAPES)
    with pytest.raises(ResultError, match=r"radii \[80, 10\] are too large: radiusX .* 50%"):
        build.ellipse((50, 50), (80, 10), image_size=(100, 100))
    with pytest.raises(ResultError, match="radiusY would be 60%"):
        build.ellipse((0.5, 0.5), (0.1, 0.6), image_size=(100, 100), unit="fraction")
    with pytest.raises(ResultError, match="turned box's width would be 120%"):
        build.rectangle((0, 0, 120, 10), image_size=(100, 100), format="xywh", rotation=30)
    assert len(build) == 0


def test_builder_accepts_a_parsed_config_and_explicit_ids():
    config = parse_label_config((CONFIGS / "computer-vision--keypoints.xml").read_text())
    build = ResultBuilder(config)
    assert build.config is config
    assert build.keypoint((1, 1), "Face", image_size=(2, 2), id="kp1")["id"] == "kp1"


def test_region_builders_refuse_objects_of_the_wrong_kind():
    build = ResultBuilder(
        """<View><Text name="t" value="$t"/>
        <RectangleLabels name="r" toName="t"><Label value="A"/></RectangleLabels></View>"""
    )
    with pytest.raises(ResultError, match="labels 't', not an Image"):
        build.rectangle((0, 0, 1, 1), "A", image_size=(2, 2))
