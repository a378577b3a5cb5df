"""`context.prompts`: the prompts of an interactive call, typed, from real editor payloads.

The fixtures in tests/fixtures/interactive/ were recorded from Label Studio 1.23.2's editor by
tests/support/capture_interactive.py (a 640x480 image); the `.handbuilt` ones hold the editor's
own serialization of regions it does not send (see the README there).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from relaxml import Context, LabelStudioModel, Project, Task
from relaxml.labels import (
    Prompts,
    UnparsedPrompt,
    is_negative_label,
    parse_label_config,
    parse_prompts,
)

FIXTURES = Path(__file__).parent / "fixtures" / "interactive"
WIDTH, HEIGHT = 640, 480
PIXEL = 2.0  # the editor snaps to its canvas: a drawn pixel lands within this of the target


def requests_of(name: str) -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / f"{name}.json").read_text())["requests"])


def prompts_of(body: dict[str, Any]) -> Prompts:
    return parse_prompts(body["params"]["context"], body["label_config"])


def test_a_point_is_a_positive_point_in_pixels():
    [prompt] = prompts_of(requests_of("keypoint")[0])
    assert prompt.kind == "point"
    assert prompt.positive
    assert not prompt.negative
    assert (prompt.label, prompt.labels) == ("Object", ("Object",))
    assert (prompt.from_name, prompt.to_name, prompt.type) == ("kp", "image", "keypointlabels")
    assert prompt.image_size == (WIDTH, HEIGHT)
    x, y = prompt.value["x"], prompt.value["y"]
    assert prompt.point == pytest.approx((x * WIDTH / 100, y * HEIGHT / 100), rel=1e-12)
    assert prompt.point == pytest.approx((160, 120), abs=PIXEL)
    assert prompt.raw == requests_of("keypoint")[0]["params"]["context"]["result"][0]
    assert prompt.id == prompt.raw["id"]
    assert {prompt} == {prompts_of(requests_of("keypoint")[0])[0]}  # hashable, by value
    assert prompt.box is None
    assert prompt.points == ()
    assert prompt.text is None


def test_an_alt_click_is_a_negative_point():
    body = requests_of("keypoint")[1]
    positive, negative = prompts_of(body)
    assert [p.raw["is_positive"] for p in (positive, negative)] == [True, False]
    assert positive.positive
    assert negative.negative
    assert negative.label == "Object"
    assert negative.point == pytest.approx((480, 360), abs=PIXEL)
    prompts = prompts_of(body)
    assert prompts.positive == (positive,)
    assert prompts.negative == (negative,)
    assert prompts.label == "Object"


def test_a_label_the_config_marks_negative_makes_a_negative_point():
    body = requests_of("keypoint")[2]
    [prompt] = prompts_of(body)
    assert prompt.raw["is_positive"] is True  # the editor does not know
    assert prompt.label == "Background"
    assert prompt.negative
    assert prompt.point == pytest.approx((320, 240), abs=PIXEL)
    # Without the config, only is_positive counts.
    [unaware] = parse_prompts(body["params"]["context"])
    assert unaware.positive


def test_a_rectangle_is_a_box_in_pixels():
    [prompt] = prompts_of(requests_of("rectangle")[0])
    assert (prompt.kind, prompt.label, prompt.from_name) == ("box", "Object", "box")
    assert prompt.positive
    assert prompt.box == pytest.approx((64, 48, 320, 240), abs=PIXEL)
    assert prompt.rotation == 0
    v = prompt.value
    assert prompt.box is not None
    assert prompt.box[2] == pytest.approx((v["x"] + v["width"]) * WIDTH / 100)


def test_a_brush_stroke_is_a_mask():
    [prompt] = prompts_of(requests_of("brush.handbuilt")[0])
    assert (prompt.kind, prompt.label, prompt.from_name) == ("brush", "Object", "brush")
    assert prompt.rle is not None
    assert prompt.image_size == (WIDTH, HEIGHT)
    mask = prompt.mask()
    assert (len(mask), len(mask[0])) == (HEIGHT, WIDTH)
    drawn = [(x, y) for y, row in enumerate(mask) for x, value in enumerate(row) if value]
    xs, ys = [x for x, _ in drawn], [y for _, y in drawn]
    # The stroke ran from (100, 400) to (260, 430), a few pixels wide.
    assert min(xs) == pytest.approx(100, abs=15)
    assert max(xs) == pytest.approx(260, abs=15)
    assert min(ys) == pytest.approx(400, abs=15)
    assert max(ys) == pytest.approx(430, abs=15)


def test_a_brush_mask_as_an_array():
    np = pytest.importorskip("numpy")
    [prompt] = prompts_of(requests_of("brush.handbuilt")[0])
    array = prompt.mask_array()
    assert array.shape == (HEIGHT, WIDTH)
    assert array.dtype == np.bool_
    assert array.tolist() == [[bool(v) for v in row] for row in prompt.mask()]


def test_an_ellipse_is_a_centre_and_radii_in_pixels():
    [prompt] = prompts_of(requests_of("ellipse.handbuilt")[0])
    assert (prompt.kind, prompt.label, prompt.from_name) == ("ellipse", "Object", "ellipse")
    assert prompt.point == pytest.approx((400, 100), abs=PIXEL)
    assert prompt.radii == pytest.approx((100, 100), abs=PIXEL)
    radii = (prompt.value["radiusX"] * WIDTH / 100, prompt.value["radiusY"] * HEIGHT / 100)
    assert prompt.radii == pytest.approx(radii, rel=1e-12)


def test_a_polygon_is_its_vertices_in_pixels():
    [prompt] = prompts_of(requests_of("polygon.handbuilt")[0])
    assert (prompt.kind, prompt.label, prompt.from_name) == ("polygon", "Object", "polygon")
    assert len(prompt.points) == 3
    for got, want in zip(prompt.points, [(500, 300), (600, 300), (600, 400)], strict=True):
        assert got == pytest.approx(want, abs=PIXEL)


def test_a_text_prompt_is_its_text():
    [prompt] = prompts_of(requests_of("text")[0])
    assert (prompt.kind, prompt.from_name, prompt.to_name) == ("text", "prompt", "image")
    assert prompt.text == "a grey cat"
    assert prompt.texts == ("a grey cat",)
    assert prompt.positive
    assert prompt.label is None
    assert prompt.image_size is None
    assert prompt.point is None


NER_CONFIG = """<View>
  <Labels name="label" toName="text"><Label value="ORG"/><Label value="PER"/></Labels>
  <Text name="text" value="$text"/>
</View>"""


def test_a_labelled_span_of_a_text_is_a_span_prompt():
    # The item the editor sends when an annotator labels "Acme Corp" with a Labels control
    # and Auto-Annotation on (Label Studio 1.23.2): offsets, no image size.
    selected = {
        "value": {"start": 0, "end": 9, "text": "Acme Corp", "labels": ["ORG"]},
        "id": "ZN54Ac17Hc", "from_name": "label", "to_name": "text", "type": "labels",
        "origin": "manual",
    }  # fmt: skip
    [prompt] = parse_prompts({"result": [selected]}, NER_CONFIG)
    assert (prompt.kind, prompt.span, prompt.text) == ("span", (0, 9), "Acme Corp")
    assert (prompt.label, prompt.from_name, prompt.to_name) == ("ORG", "label", "text")
    assert prompt.positive
    assert prompt.image_size is None
    backwards = {**selected, "value": {"start": 9, "end": 2, "labels": ["ORG"]}}
    parsed = parse_prompts({"result": [backwards]}, NER_CONFIG)
    assert list(parsed) == []
    assert "integer offsets" in parsed.unparsed[0].reason


def item(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "from_name": "kp",
        "to_name": "image",
        "type": "keypointlabels",
        "original_width": 200,
        "original_height": 100,
        "value": {"x": 50, "y": 25, "keypointlabels": ["Cat"]},
    }
    base.update(fields)
    return base


def test_pixels_from_known_percentages():
    context = {
        "result": [
            item(),
            item(
                type="rectanglelabels",
                value={"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 15},
            ),
            item(type="ellipselabels", value={"x": 50, "y": 50, "radiusX": 10, "radiusY": 20}),
            item(type="polygonlabels", value={"points": [[0, 0], [100, 0], [100, 100]]}),
        ]
    }
    point, box, ellipse, polygon = parse_prompts(context)
    assert point.point == (100, 25)
    assert box.box == pytest.approx((20, 20, 80, 60))
    assert box.rotation == 15
    assert ellipse.point == (100, 50)
    assert ellipse.radii == (20, 20)
    assert polygon.points == ((0, 0), (200, 0), (200, 100))
    assert [p.kind for p in parse_prompts(context).of_kind("point", "polygon")] == [
        "point",
        "polygon",
    ]


def test_no_call_no_prompts():
    assert parse_prompts(None) == ()
    assert parse_prompts(None).unparsed == ()
    assert parse_prompts({}) == ()
    assert parse_prompts({"result": []}) == ()
    assert isinstance(parse_prompts(None), tuple)


def test_unreadable_items_are_set_aside_with_the_reason():
    context = {
        "result": [
            "a string",
            item(type="choices"),
            item(value={"x": "left", "y": 3}),
            item(original_width=None),
            item(value={"x": float("nan"), "y": 3}),
            item(type="polygonlabels", value={"points": [[1, 2, 3]]}),
            item(type="brushlabels", value={"rle": [1, 999]}),
            item(type="textarea", value={"text": [3]}),
            item(from_name=None),
            item(),
        ]
    }
    prompts = parse_prompts(context)
    assert len(prompts) == 1
    assert prompts[0].point == (100, 25)
    reasons = [u.reason for u in prompts.unparsed]
    assert len(reasons) == 9
    assert "not an object" in reasons[0]
    assert "'choices' is not a prompt type" in reasons[1]
    assert "value.x must be a finite number" in reasons[2]
    assert "original_width" in reasons[3]
    assert all(isinstance(u, UnparsedPrompt) for u in prompts.unparsed)
    assert prompts.unparsed[0].raw == "a string"
    assert parse_prompts({"result": "nope"}).unparsed[0].reason.startswith("params.context")


def test_how_a_config_marks_a_label_negative():
    config = parse_label_config(
        """<View><Image name="image" value="$image"/>
        <KeyPointLabels name="kp" toName="image" smart="true">
          <Label value="Cat"/>
          <Label value="Not cat" negative="true"/>
          <Label value="(-1)" alias="-1"/>
          <Label value="(+1)" alias="1"/>
        </KeyPointLabels></View>"""
    )
    labels = {label.value: label for label in config.control("kp").labels}
    assert [is_negative_label(labels[v]) for v in ("Cat", "Not cat", "(-1)", "(+1)")] == [
        False,
        True,
        True,
        False,
    ]
    context = {"result": [item(value={"x": 1, "y": 1, "keypointlabels": [name]}) for name in "ab"]}
    context["result"][0]["value"]["keypointlabels"] = ["-1"]  # an alias is what results store
    context["result"][1]["value"]["keypointlabels"] = ["Not cat"]
    assert [p.positive for p in parse_prompts(context, config)] == [False, False]
    # A config that does not parse is no reason to fail: only is_positive counts then.
    assert [p.positive for p in parse_prompts(context, "<View")] == [True, True]


def test_context_prompts_are_parsed_once():
    body = requests_of("keypoint")[1]
    context = Context(
        project=Project(uid="1.1"),
        label_config=body["label_config"],
        interactive=body["params"]["context"],
    )
    assert context.prompts is context.prompts
    assert len(context.prompts) == 2
    assert Context(project=Project(uid="1.1")).prompts == ()


class Prompted(LabelStudioModel):
    """Answers with what it saw in `context.prompts`."""

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        seen = [
            [p.kind, p.positive, p.label, [round(v) for v in p.point or ()]]
            for p in context.prompts
        ]
        self.seen = seen
        return [{"result": [], "score": 0.5} for _ in tasks]


def test_a_served_model_sees_the_prompts(serve):
    model = Prompted()
    client = serve(model)
    answer = client.post("/predict", json=requests_of("keypoint")[1])
    assert answer.status_code == 200, answer.text
    assert model.seen == [
        ["point", True, "Object", [160, 120]],
        ["point", False, "Object", [480, 360]],
    ]
    body = requests_of("keypoint")[1]
    body["params"] = {"context": None}
    assert client.post("/predict", json=body).status_code == 200
    assert model.seen == []


class Grounded(LabelStudioModel):
    """A Grounding DINO-like model: a text prompt in, boxes of the prompt's image out."""

    def predict(self, tasks: list[Task], context: Context) -> list[Any]:
        from relaxml import ResultBuilder

        [prompt] = context.prompts.of_kind("text")
        assert prompt.text == "a grey cat"
        build = ResultBuilder(context.label_config)
        build.rectangle((100, 80, 420, 400), "Object", image_size=(WIDTH, HEIGHT), score=0.7)
        return [build.prediction()]


def test_a_text_prompt_is_answered_with_a_box_of_the_rectangle_control(serve):
    from relaxml import check_prediction

    body = requests_of("text")[0]
    answer = serve(Grounded).post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    [prediction] = answer.json()["results"]
    [item] = prediction["result"]
    assert (item["from_name"], item["to_name"], item["type"]) == ("box", "image", "rectanglelabels")
    assert item["value"]["rectanglelabels"] == ["Object"]
    assert (item["original_width"], item["original_height"]) == (WIDTH, HEIGHT)
    assert check_prediction(body["label_config"], prediction) == []
