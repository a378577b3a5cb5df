"""The labeling config parser over Label Studio's own templates, and its safety limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from relaxml.labels._xmltree import MAX_CONFIG_CHARS, MAX_DEPTH
from relaxml.labels.labelconfig import (
    LabelConfig,
    LabelConfigError,
    UnknownTagError,
    parse_label_config,
)

CONFIGS = Path(__file__).parent / "fixtures" / "label_configs"
TEMPLATES = sorted(CONFIGS.glob("*.xml"))


def template(name: str) -> LabelConfig:
    return parse_label_config((CONFIGS / f"{name}.xml").read_text())


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_every_template_parses_into_controls_and_objects(path):
    config = parse_label_config(path.read_text())
    assert config.controls
    assert config.objects
    for control in config.controls:
        assert control.to_names
        assert control.type == control.tag.lower()
        assert control.line > 0
        for target in control.to_names:
            assert config.get_object(target) is not None or config.get_control(target)


def test_image_classification():
    config = template("computer-vision--image-classification")
    choices = config.control("choice")
    assert choices.tag == "Choices"
    assert choices.to_names == ("image",)
    assert choices.label_names == ("Adult content", "Weapons", "Violence")
    assert choices.choice == "single"
    assert not choices.multiple
    image = config.object("image")
    assert (image.type, image.value, image.value_key) == ("image", "$image", "image")


def test_object_detection_labels_have_attributes():
    config = template("computer-vision--object-detection-with-bounding-boxes")
    rect = config.find_control("RectangleLabels", "Image")
    assert rect is not None
    assert rect.name == "label"
    assert [(lab.value, lab.background) for lab in rect.labels] == [
        ("Airplane", "green"),
        ("Car", "blue"),
    ]
    assert config.find_control("RectangleLabels", "Text") is None
    assert config.find_control("PolygonLabels") is None


def test_segmentation_and_keypoints():
    brush = template("computer-vision--semantic-segmentation-with-masks").control("tag")
    assert brush.type == "brushlabels"
    assert brush.labels[0].background == "rgba(255, 0, 0, 0.7)"
    polygons = template("computer-vision--semantic-segmentation-with-polygons")
    assert polygons.controls_of_type("polygonlabels")[0].label_names == ("Airplane", "Car")
    keypoints = template("computer-vision--keypoints")
    assert keypoints.find_control("keypointlabels", "image").name == "kp-1"
    assert keypoints.object("img-1").value_key == "img"


def test_ner_labels_on_text():
    config = template("natural-language-processing--named-entity-recognition")
    labels = config.control("label")
    assert labels.type == "labels"
    assert config.objects_for(labels)[0].type == "text"
    assert labels.label_names == ("PER", "ORG", "LOC", "MISC")


def test_text_classification_and_relations():
    assert template("natural-language-processing--text-classification").control(
        "sentiment"
    ).label_names == ("Positive", "Negative", "Neutral")
    relations = template("natural-language-processing--relation-extraction")
    assert [r.value for r in relations.relation_labels] == ["org:founded_by", "org:founded"]


def test_labels_on_hypertext_and_audio():
    html = template("structured-data-parsing--html-entity-recognition")
    assert html.find_control("hypertextlabels", "hypertext") is not None
    audio = template("audio-speech-processing--speech-transcription")
    assert [c.name for c in audio.controls_for("audio")] == ["label", "transcription", "sentiment"]
    assert audio.find_control("labels", "audio").name == "label"
    assert audio.control("transcription").type == "textarea"


def test_taxonomy_tree():
    taxonomy = template("natural-language-processing--taxonomy").control("taxonomy")
    assert [lab.value for lab in taxonomy.labels] == ["Archaea", "Bacteria", "Eukarya"]
    assert [lab.value for lab in taxonomy.labels[2].children] == [
        "Human",
        "Oppossum",
        "Extraterrestial",
    ]
    assert ("Eukarya", "Human") in taxonomy.taxonomy_paths()
    assert ("Archaea",) in taxonomy.taxonomy_paths()
    assert "Human" in taxonomy.label_names


def test_time_series_channels():
    config = template("time-series-analysis--activity-recognition")
    ts = config.object("ts")
    assert ts.channels == ("velocity", "acceleration")
    assert ts.attrs["timeColumn"] == "time"
    assert config.control("label").type == "timeserieslabels"


def test_dynamic_labels_nested_views_and_multiple_controls():
    config = template("ranking-and-scoring--serp-ranking")
    dynamic = config.control("dynamic_choices")
    assert dynamic.dynamic_labels
    assert dynamic.multiple
    assert dynamic.labels == ()
    assert [c.name for c in config.controls_for("text")] == [
        "dynamic_choices",
        "relevance",
        "confidence",
    ]
    assert config.control("confidence").label_names == ("Low", "High")


def test_control_with_several_objects():
    config = template("community-contributions--breast-cancer-mammogram-classification")
    birads = config.control("birads_left")
    assert birads.to_names == ("left_cc", "right_cc", "left_mlo", "right_mlo")
    assert [o.name for o in config.objects_for(birads)] == list(birads.to_names)


def test_chat_is_both_object_and_control():
    config = template("chat--chat_eval")
    assert config.get_object("chat") is not None
    assert config.get_control("chat") is not None
    assert config.control("chat").type == "chat"


def test_a_chat_without_to_name_labels_itself_with_chatmessage_results():
    config = parse_label_config(
        '<View><Chat name="chat" value="$chat"/><ReactCode name="app" value="$code"/>'
        '<Choices name="ok" toName="chat"><Choice value="Yes"/></Choices></View>'
    )
    chat = config.control("chat")
    assert (chat.tag, chat.type, chat.to_names, chat.result_type) == (
        "Chat",
        "chatmessage",
        ("chat",),
        "chatmessage",
    )
    assert config.object("chat").value_key == "chat"
    assert config.control("app").type == "reactcode"
    assert config.control("ok").type == "choices"
    assert config.control("ok").result_type is None


def test_label_attributes_and_mapping():
    config = parse_label_config(
        """<View>
          <Image name="img" value="$url"/>
          <RectangleLabels name="box" toName="img" choice="multiple" smart="true">
            <Label value="Car" predicted_values="car,truck" hotkey="c" background="red"/>
            <Label value="Person" alias="PER" selected="true"/>
            <Label value="truck"/>
          </RectangleLabels>
        </View>"""
    )
    box = config.control("box")
    assert box.smart
    assert box.multiple
    car, person, _truck = box.labels
    assert car.predicted_values == ("car", "truck")
    assert (car.hotkey, car.background, car.line) == ("c", "red", 4)
    assert person.name == "PER"
    assert person.selected
    assert box.label_names == ("Car", "PER", "truck")
    # predicted_values first, then exact value or alias, then any case.
    assert box.match_label("truck") is car
    assert box.match_label("Person") is person
    assert box.match_label("per") is person
    assert box.match_label("CAR") is car
    assert box.match_label("bicycle") is None


def test_lookups_raise_clear_errors():
    config = template("computer-vision--image-classification")
    with pytest.raises(UnknownTagError, match=r"no control named 'nope'; controls: \['choice'\]"):
        config.control("nope")
    with pytest.raises(KeyError, match="no object tag named 'x'"):
        config.object("x")
    assert config.get_control("nope") is None
    assert config.controls_of_type("Choices", "Labels") == [config.control("choice")]
    assert config.objects_of_type("IMAGE") == [config.object("image")]
    assert "Choices:choice" in repr(config)


def test_parsed_once_per_config_string():
    text = (CONFIGS / "computer-vision--image-classification.xml").read_text()
    assert parse_label_config(text) is parse_label_config(text)
    assert parse_label_config(text + " ") is not parse_label_config(text)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('<View>\n  <Image name="i" value="$i">\n</View>', 3, "mismatched tag"),
        ("<View>\n<Text name='t' value='$t'/>\n<Choices name='c' toName='t'\n", 3, "unclosed"),
        ("<View><Text name='t' value='$t' value='x'/></View>", 1, "duplicate attribute"),
        ("", None, "is empty"),
        ("   \n ", None, "is empty"),
        (
            "<View>\n<Text name='t' value='$t'/>\n<Labels name='t' toName='t'/></View>",
            3,
            "'t' is used twice",
        ),
        (
            "<View>\n<Text name='t' value='$t'/>\n\n<Labels name='l' toName='x'/></View>",
            4,
            "toName='x'",
        ),
        ("<View><Choices name='c' toName='c'><Choice/></Choices></View>", 1, "no value"),
    ],
)
def test_malformed_configs_name_the_line(text, line, message):
    with pytest.raises(LabelConfigError, match=message) as raised:
        parse_label_config(text)
    assert raised.value.line == line
    if line is not None:
        assert f"line {line}" in str(raised.value)


def test_entity_expansion_bombs_are_refused():
    bomb = (
        '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
        "]>\n<View><Text name='t' value='&lol3;'/></View>"
    )
    with pytest.raises(LabelConfigError, match="DTDs and entities are not allowed"):
        parse_label_config(bomb)


def test_external_entities_are_refused():
    xxe = (
        '<!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        "<View><Text name='t' value='&x;'/></View>"
    )
    with pytest.raises(LabelConfigError, match="DOCTYPE"):
        parse_label_config(xxe)


def test_undeclared_entities_are_errors():
    with pytest.raises(LabelConfigError, match="undefined entity"):
        parse_label_config("<View><Text name='t' value='&nope;'/></View>")


def test_oversized_and_too_deep_configs_are_refused():
    huge = "<View>" + " " * MAX_CONFIG_CHARS + "</View>"
    with pytest.raises(LabelConfigError, match="too large"):
        parse_label_config(huge)
    deep = "<View>" * (MAX_DEPTH + 1) + "</View>" * (MAX_DEPTH + 1)
    with pytest.raises(LabelConfigError, match="deeper than"):
        parse_label_config(deep)


def test_non_strings_are_refused():
    with pytest.raises(LabelConfigError, match="must be a string"):
        parse_label_config(None)  # type: ignore[arg-type]


def test_xml_declaration_comments_and_entities_of_xml_itself():
    config = parse_label_config(
        '<?xml version="1.0" encoding="UTF-8"?>\n<!-- a comment -->\n<View>\n'
        '<Text name="t" value="$t"/>\n<Choices name="c" toName="t">'
        '<Choice value="A &amp; B"/></Choices></View>'
    )
    assert config.control("c").label_names == ("A & B",)
    assert config.control("c").line == 5


def test_case_insensitive_matching_includes_predicted_values():
    config = parse_label_config(
        '<View><Text name="t" value="$t"/><Choices name="c" toName="t">'
        '<Choice value="Vehicle" predicted_values="car"/><Choice value="CAR-PARK"/>'
        "</Choices></View>"
    )
    vehicle, park = config.control("c").labels
    assert config.control("c").match_label("CAR") is vehicle
    assert config.control("c").match_label("car-park") is park


def test_model_params_are_the_typed_model_attributes():
    config = parse_label_config(
        '<View><Image name="image" value="$image"/>'
        '<RectangleLabels name="label" toName="image" model_path="yolo-s.pt"'
        ' model_score_threshold="0.4" model_skip="False" model_max_det="300"'
        ' model_classes="cat, dog" model_="x" smart="true">'
        '<Label value="Cat"/></RectangleLabels></View>'
    )
    params = config.control("label").model_params
    assert params == {
        "path": "yolo-s.pt",
        "score_threshold": 0.4,
        "skip": False,
        "max_det": 300,
        "classes": "cat, dog",
    }
    assert type(params["max_det"]) is int
    plain = '<View><Text name="t" value="$t"/><Choices name="c" toName="t"/></View>'
    assert parse_label_config(plain).control("c").model_params == {}
