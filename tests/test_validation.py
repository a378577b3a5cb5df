"""check_prediction: every problem it reports, and that it never raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaxml.labels.results import ResultBuilder
from relaxml.labels.validation import Problem, check_prediction, check_result

CONFIGS = Path(__file__).parent / "fixtures" / "label_configs"

CONFIG = """<View>
  <Image name="image" value="$image"/>
  <Text name="text" value="$text"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="Car"/></PolygonLabels>
  <KeyPointLabels name="kp" toName="image"><Label value="Car"/></KeyPointLabels>
  <EllipseLabels name="ell" toName="image"><Label value="Car"/></EllipseLabels>
  <BrushLabels name="mask" toName="image"><Label value="Car"/></BrushLabels>
  <Choices name="kind" toName="text"><Choice value="A"/><Choice value="B"/></Choices>
  <Choices name="tags" toName="text" choice="multiple" value="$tags"/>
  <Labels name="ner" toName="text"><Label value="PER"/></Labels>
  <TextArea name="note" toName="text"/>
  <Number name="n" toName="text" min="1" max="5"/>
  <Rating name="stars" toName="text"/>
  <DateTime name="when" toName="text"/>
  <Taxonomy name="tax" toName="text">
    <Choice value="Animal"><Choice value="Dog"/></Choice>
  </Taxonomy>
  <Relations><Relation value="knows"/></Relations>
</View>"""

IMAGE = {"original_width": 100, "original_height": 50}


def item(from_name: str, type_: str, value: dict[str, Any], **extra: Any) -> dict[str, Any]:
    image_types = ("rectanglelabels", "polygonlabels", "keypointlabels", "ellipselabels")
    to_name = "image" if type_ in (*image_types, "brushlabels") else "text"
    return {
        "id": extra.pop("id", from_name),
        "from_name": from_name,
        "to_name": extra.pop("to_name", to_name),
        "type": type_,
        "value": value,
        **extra,
    }


def codes(result: list[Any], config: str = CONFIG, **prediction: Any) -> list[str]:
    return [p.code for p in check_prediction(config, {"result": result, **prediction})]


def rect(**value: Any) -> dict[str, Any]:
    base = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["Car"]}
    return item("box", "rectanglelabels", {**base, **value}, **IMAGE)


def test_a_good_prediction_has_no_problems():
    build = ResultBuilder(CONFIG)
    car = build.rectangle((1, 1, 20, 20), "Car", image_size=(100, 50), score=0.5)
    build.polygon([(0, 0), (10, 0), (10, 10)], "Car", image_size=(100, 50))
    build.keypoint((5, 5), "Car", image_size=(100, 50))
    build.ellipse((50, 25), (10, 10), "Car", image_size=(100, 50))
    build.brush([[1, 0], [0, 1]], "Car")
    build.choices("A", from_name="kind")
    build.choices(["x", "y"], from_name="tags")
    person = build.span(0, 3, "PER")
    build.textarea("hi")
    build.number(2)
    build.rating(4)
    build.datetime("2024-01-01T10:00")
    build.taxonomy([["Animal", "Dog"]])
    build.relation(car, person, "knows")
    assert check_prediction(CONFIG, build.prediction(score=0.9)) == []
    assert check_prediction(CONFIG, build.prediction(score=0.9).__dict__) == []
    assert check_result(build.config, build.result) == []


@pytest.mark.parametrize(
    ("result_item", "code", "words"),
    [
        (item("nope", "choices", {"choices": ["A"]}), "unknown-from-name", "from_name 'nope'"),
        (item("kind", "choices", {"choices": ["A"]}, to_name="img"), "unknown-to-name", "'img'"),
        (item("kind", "labels", {"labels": ["A"]}), "wrong-type", "should be 'choices'"),
        (item("kind", "choices", {"choices": ["C"]}), "unknown-label", "label 'C'"),
        (item("kind", "choices", {"choices": ["A", "B"]}), "bad-value", "one choice"),
        (item("kind", "choices", {"choices": "A"}), "bad-value", "list of label strings"),
        (item("kind", "choices", ["A"]), "bad-value", "'value' must be a dict"),
        (item("kind", "choices", {"choices": ["A"]}, score="hi"), "bad-score", "score"),
        (rect(x=-1), "out-of-range", "value.x = -1"),
        (rect(width=101), "out-of-range", "value.width = 101"),
        (rect(x=90), "out-of-range", "value.x + value.width = 110"),
        (rect(y="top"), "bad-value", "value.y must be a number"),
        (
            item(
                "box",
                "rectanglelabels",
                {"x": 1, "y": 1, "width": 1, "height": 1, "rectanglelabels": ["Car"]},
            ),
            "missing-original-size",
            "original_width",
        ),
        (
            item(
                "poly",
                "polygonlabels",
                {"points": [[0, 0], [120, 5]], "polygonlabels": ["Car"]},
                **IMAGE,
            ),
            "out-of-range",
            "points[1][0] = 120",
        ),
        (
            item(
                "poly", "polygonlabels", {"points": [[0, 0, 1]], "polygonlabels": ["Car"]}, **IMAGE
            ),
            "bad-value",
            "[x, y] pairs",
        ),
        (
            item("kp", "keypointlabels", {"x": 5, "y": 105, "keypointlabels": ["Car"]}, **IMAGE),
            "out-of-range",
            "value.y = 105",
        ),
        (
            item(
                "ell",
                "ellipselabels",
                {"x": 5, "y": 5, "radiusX": -2, "radiusY": 3, "ellipselabels": ["Car"]},
                **IMAGE,
            ),
            "out-of-range",
            "radiusX",
        ),
        (
            item(
                "mask", "brushlabels", {"format": "png", "rle": [], "brushlabels": ["Car"]}, **IMAGE
            ),
            "bad-value",
            "format must be 'rle'",
        ),
        (
            item(
                "mask",
                "brushlabels",
                {"format": "rle", "rle": [999], "brushlabels": ["Car"]},
                **IMAGE,
            ),
            "bad-value",
            "0 to 255",
        ),
        (
            item(
                "mask",
                "brushlabels",
                {"format": "rle", "rle": [1, 2], "brushlabels": ["Car"]},
                **IMAGE,
            ),
            "bad-value",
            "too short",
        ),
        (
            item(
                "mask",
                "brushlabels",
                {"format": "rle", "rle": [0, 0, 0, 16, 57, 27, 248], "brushlabels": ["Car"]},
                **IMAGE,
            ),
            "bad-value",
            "a 100x50 image needs 20000",
        ),
        (item("ner", "labels", {"labels": ["PER"]}), "bad-value", "value.start and value.end"),
        (item("note", "textarea", {"text": [1]}), "bad-value", "list of strings"),
        (item("n", "number", {"number": 9}), "out-of-range", "min/max"),
        (item("n", "number", {"number": "9"}), "bad-value", "finite number"),
        (item("stars", "rating", {"rating": 6}), "bad-value", "0..5"),
        (item("when", "datetime", {"datetime": 2024}), "bad-value", "string"),
        (item("tax", "taxonomy", {"taxonomy": [["Animal", "Cat"]]}), "unknown-label", "Cat"),
        (item("tax", "taxonomy", {"taxonomy": ["Animal"]}), "bad-value", "list of paths"),
        ({"type": "relation", "from_id": "x", "to_id": "y"}, "bad-relation", "from_id 'x'"),
        (
            {"type": "relation", "from_id": "kind", "to_id": "kind", "labels": ["hates"]},
            "unknown-label",
            "'hates'",
        ),
        (
            {"type": "relation", "from_id": "kind", "to_id": "kind", "labels": "knows"},
            "bad-relation",
            "list of strings",
        ),
        ("not a dict", "bad-shape", "must be a dict"),
    ],
)
def test_each_problem(result_item, code, words):
    good = item("kind", "choices", {"choices": ["A"]})
    problems = check_prediction(CONFIG, {"result": [good, result_item]})
    assert code in [p.code for p in problems], problems
    problem = next(p for p in problems if p.code == code)
    assert problem.index == 1
    assert words in problem.message
    assert str(problem).startswith("result[1]: ")


def test_prediction_level_problems():
    assert codes([], score=float("nan")) == ["bad-score"]
    assert codes("x") == ["bad-shape"]  # type: ignore[arg-type]
    assert [p.code for p in check_prediction(CONFIG, [])] == ["bad-shape"]  # type: ignore[arg-type]
    assert str(Problem("bad-score", "score is wrong")) == "score is wrong"


def test_a_bad_config_is_a_problem_not_an_exception():
    [problem] = check_prediction("<View>", {"result": []})
    assert problem.code == "bad-config"
    assert "line 1" in problem.message
    assert check_prediction(None, {"result": []})[0].code == "bad-config"  # type: ignore[arg-type]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.xml")), ids=lambda p: p.stem)
def test_empty_predictions_are_fine_for_every_template(path):
    assert check_prediction(path.read_text(), {"result": [], "score": 0.0}) == []


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
items = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["box", "kind"]) | json_values,
        "from_name": st.sampled_from(["box", "kind", "tax", "mask", "ner", "nope"]) | json_values,
        "to_name": st.sampled_from(["image", "text"]) | json_values,
        "type": st.sampled_from(
            ["rectanglelabels", "choices", "taxonomy", "brushlabels", "relation", "labels"]
        )
        | json_values,
        "value": json_values,
        "score": json_values,
        "original_width": json_values,
        "from_id": json_values,
        "labels": json_values,
        "direction": st.sampled_from(["right", "up"]) | json_values,
    },
)


def test_an_item_of_unhashable_type_is_a_problem_not_an_exception():
    odd = {"id": "a", "from_name": "box", "type": ["rectanglelabels"], "value": {}}
    assert [p.code for p in check_prediction(CONFIG, {"result": [odd]})] == [
        "unknown-to-name",
        "wrong-type",
    ]


@given(st.lists(items | json_values, max_size=5), json_values)
def test_never_raises(result, score):
    problems = check_prediction(CONFIG, {"result": result, "score": score})
    assert all(isinstance(p, Problem) for p in problems)
