"""`find_target`: the control a model predicts for, its object and data key, whatever the names."""

from __future__ import annotations

import pytest

from relaxml.labels import NoTargetError, find_target, parse_label_config

CONFIG = """<View>
  <Header value="$title"/>
  <HyperText name="page" value="$html"/>
  <Text name="body" value="$body"/>
  <Choices name="free" toName="body" value="$options"/>
  <Choices name="mood" toName="body">
    <Choice value="up"/><Choice value="Down" alias="down"/>
  </Choices>
  <Image name="photo" value="$img"/>
  <RectangleLabels name="boxes" toName="photo"/>
  <RectangleLabels name="squirrels" toName="photo"><Label value="Squirrel"/></RectangleLabels>
</View>"""


def test_the_first_control_on_the_object_with_its_names():
    target = find_target(CONFIG, "Choices", "Text")
    assert (target.from_name, target.to_name, target.data_key) == ("free", "body", "body")
    assert target.labels == ()  # labels from task data: any may appear
    assert target.config is parse_label_config(CONFIG)
    assert (target.control.name, target.object.name) == ("free", "body")


def test_with_labels_skips_controls_without_labels_of_their_own():
    target = find_target(CONFIG, "Choices", ("HyperText", "Text"), with_labels=True)
    assert (target.from_name, target.labels) == ("mood", ("up", "down"))  # the alias, stored
    boxes = find_target(CONFIG, ("Labels", "RectangleLabels"), "Image", with_labels=True)
    assert (boxes.from_name, boxes.labels) == ("squirrels", ("Squirrel",))
    assert find_target(CONFIG, ("Labels", "RectangleLabels"), "Image").from_name == "boxes"


def test_no_such_pair_says_what_to_add():
    with pytest.raises(NoTargetError, match=r"no <Labels> on a <Text>.*add one"):
        find_target(CONFIG, "Labels", "Text")
    with pytest.raises(ValueError, match=r"no <Choices> with labels on a <Image>"):
        find_target(CONFIG, "Choices", "Image", with_labels=True)
    with pytest.raises(NoTargetError, match=r"no <Choices> on the <Text> 'page'"):
        find_target(CONFIG, "Choices", "Text", to_name="page")


def test_to_name_picks_the_object():
    config = """<View><Image name="a" value="$a"/><Image name="b" value="$b"/>
      <BrushLabels name="ma" toName="a"/><BrushLabels name="mb" toName="b"/></View>"""
    assert find_target(config, "BrushLabels", "Image", to_name="b").from_name == "mb"
    assert find_target(config, "BrushLabels", "Image").from_name == "ma"


def test_results_in_gives_the_control_s_items_in_order():
    target = find_target(CONFIG, "Choices", "Text", with_labels=True)
    annotations = [
        {"result": [{"from_name": "mood", "value": {"choices": ["up"]}}, "junk"]},
        {"result": None},
        {"result": [{"from_name": "free", "value": {"choices": ["x"]}},
                    {"from_name": "mood", "value": {"choices": ["down"]}},
                    {"from_name": "mood", "value": "not a dict"}]},
    ]  # fmt: skip
    found = target.results_in(annotations)
    assert [item["value"]["choices"] for item in found] == [["up"], ["down"]]
