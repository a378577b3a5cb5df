"""check_prediction holds the rules of Label Studio's own prediction validator, and knows the
controls beyond the common ones: HyperText and Paragraphs spans, time series, video boxes and
timelines, rankers, pairwise choices, chats, and `Labels` on images and videos (split and merged
with their tool). tests/test_validator_reference.py holds the same against the validator itself.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from relaxml.labels.labelconfig import parse_label_config
from relaxml.labels.validation import Problem, check_prediction

IMAGE = {"original_width": 100, "original_height": 50}


def codes(config: str, result: list[Any]) -> list[str]:
    return [p.code for p in check_prediction(config, {"result": result})]


MORE = """<View>
  <Image name="image" value="$image"/>
  <HyperText name="page" value="$html"/>
  <Paragraphs name="dialog" value="$dialog"/>
  <TimeSeries name="ts" value="$csv"><Channel column="v"/></TimeSeries>
  <Video name="video" value="$video"/>
  <List name="results" value="$items"/>
  <Text name="left" value="$a"/><Text name="right" value="$b"/>
  <RectangleLabels name="box" toName="image"><Label value="Car"/></RectangleLabels>
  <EllipseLabels name="ell" toName="image"><Label value="Car"/></EllipseLabels>
  <HyperTextLabels name="html" toName="page"><Label value="Title"/></HyperTextLabels>
  <ParagraphLabels name="said" toName="dialog"><Label value="Q"/></ParagraphLabels>
  <TimeSeriesLabels name="event" toName="ts"><Label value="Up"/></TimeSeriesLabels>
  <VideoRectangle name="track" toName="video"/>
  <TimelineLabels name="scene" toName="video"><Label value="Intro"/></TimelineLabels>
  <Ranker name="rank" toName="results"/>
  <Pairwise name="pick" toName="left,right"/>
  <TextArea name="note" toName="page"/>
  <Relations><Relation value="knows"/></Relations>
</View>"""


def one(from_name: str, to_name: str, type_: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {
        "id": from_name,
        "from_name": from_name,
        "to_name": to_name,
        "type": type_,
        "value": value,
        **extra,
    }


GOOD = {
    "box": one(
        "box",
        "image",
        "rectanglelabels",
        {"x": 1, "y": 1, "width": 5, "height": 5, "rotation": 360, "rectanglelabels": ["Car"]},
        **IMAGE,
    ),
    "ell": one(
        "ell",
        "image",
        "ellipselabels",
        {"x": 50, "y": 50, "radiusX": 50, "radiusY": 1, "ellipselabels": ["Car"]},
        **IMAGE,
    ),
    "html": one(
        "html",
        "page",
        "hypertextlabels",
        {
            "start": "/p[1]",
            "end": "/p[1]",
            "startOffset": 0,
            "endOffset": 4,
            "hypertextlabels": ["Title"],
        },
    ),
    "said": one(
        "said",
        "dialog",
        "paragraphlabels",
        {"start": "0", "end": "1", "startOffset": 0, "endOffset": 2, "paragraphlabels": ["Q"]},
    ),
    "event": one(
        "event",
        "ts",
        "timeserieslabels",
        {"start": 1, "end": 5, "instant": False, "timeserieslabels": ["Up"]},
    ),
    "track": one(
        "track",
        "video",
        "videorectangle",
        {
            "framesCount": 10,
            "duration": 1.0,
            "sequence": [
                {"frame": 1, "time": 0.1, "x": 1, "y": 1, "width": 2, "height": 2, "enabled": True}
            ],
        },
    ),
    "scene": one(
        "scene",
        "video",
        "timelinelabels",
        {"ranges": [{"start": 1, "end": 3}], "timelinelabels": ["Intro"]},
    ),
    "rank": one("rank", "results", "ranker", {"ranker": {"rank": ["a", "b"]}}),
    "pick": one("pick", "left", "pairwise", {"selected": "left"}),
    "note": one("note", "page", "textarea", {"text": ["hello"]}),
}


def test_what_label_studio_accepts_passes():
    relation = {"type": "relation", "from_id": "box", "to_id": "ell", "direction": "right"}
    assert check_prediction(MORE, {"result": [*GOOD.values(), relation], "score": 1}) == []


def changed(name: str, **value: Any) -> dict[str, Any]:
    good = GOOD[name]
    return {**good, "value": {**good["value"], **value}}


@pytest.mark.parametrize(
    ("result_item", "code", "words"),
    [
        (changed("box", rotation=361), "out-of-range", "rotation = 361"),
        (changed("box", rotation=30, x=101), "out-of-range", "value.x = 101"),
        (changed("box", rotation=360, x=-1), "out-of-range", "value.x = -1"),
        (changed("box", rotation="left"), "bad-value", "rotation must be a number"),
        (changed("ell", rotation=400), "out-of-range", "rotation = 400"),
        (changed("ell", radiusX=50.5), "out-of-range", "radiusX = 50.5 is over 50"),
        (changed("note", text="hello"), "bad-value", "list of strings"),
        (changed("html", startOffset=-1), "bad-value", "startOffset must be a non-negative"),
        (changed("said", endOffset=1.5), "bad-value", "endOffset"),
        (changed("said", start=None), "bad-value", "value.start and value.end"),
        (
            {**GOOD["event"], "value": {"start": 1, "end": 2, "timeserieslabels": ["Up"]}},
            "bad-value",
            "value.instant",
        ),
        (
            changed(
                "track",
                sequence=[{"frame": 1, "time": 0, "x": 1, "y": 1, "width": 120, "height": 1}],
            ),
            "out-of-range",
            "width = 120",
        ),
        (changed("track", framesCount=None), "bad-value", "framesCount"),
        (changed("scene", ranges=[]), "bad-value", "value.ranges"),
        (changed("scene", timelinelabels=["Outro"]), "unknown-label", "'Outro'"),
        (changed("rank", ranker=["a"]), "bad-value", "value.ranker"),
        (changed("pick", selected=["left"]), "bad-value", "'left' or 'right'"),
        ({"type": "relation", "from_id": "box", "to_id": "ell"}, "bad-relation", "direction"),
        (
            {"type": "relation", "from_id": "box", "to_id": "ell", "direction": "up"},
            "bad-relation",
            "got 'up'",
        ),
    ],
)
def test_what_label_studio_rejects(result_item, code, words):
    problems = check_prediction(MORE, {"result": [GOOD["box"], GOOD["ell"], result_item]})
    found = [p for p in problems if p.code == code and p.index == 2]
    assert found, problems
    assert words in found[0].message


@pytest.mark.parametrize("score", [-0.1, 1.5, 2])
def test_a_prediction_score_is_between_0_and_1(score):
    [problem] = check_prediction(MORE, {"result": [], "score": score})
    assert problem.code == "bad-score"
    assert "between 0 and 1" in problem.message
    assert check_prediction(MORE, {"result": [], "score": 1.0}) == []


def test_labels_on_an_image_label_the_region_sharing_their_id():
    config = (
        '<View><Image name="image" value="$i"/><Labels name="l" toName="image">'
        '<Label value="A"/></Labels><Rectangle name="r" toName="image"/></View>'
    )
    geometry = {"x": 1, "y": 1, "width": 1, "height": 1}
    box = {**one("r", "image", "rectangle", geometry, **IMAGE), "id": "r1"}
    labelled = {**one("l", "image", "labels", {**geometry, "labels": ["A"]}), "id": "r1"}
    assert codes(config, [box, labelled]) == []
    # Alone, Label Studio reads a Labels item as a span: it needs start and end.
    assert codes(config, [labelled]) == ["bad-value"]
    too_wide = {**labelled, "value": {**geometry, "width": 120, "labels": ["A"]}}
    assert "out-of-range" in codes(config, [box, too_wide])


CHAT = """<View>
  <Chat name="chat" value="$messages"/>
  <Rating name="grade" toName="chat" perRegion="true"/>
</View>"""


def test_the_messages_of_a_chat_without_to_name():
    message = {"role": "assistant", "content": "Hello", "createdAt": 1700000000}
    good = one("chat", "chat", "chatmessage", {"chatmessage": message})
    assert check_prediction(CHAT, {"result": [good]}) == []
    wrong = [
        {**good, "value": {"chatmessage": {"role": "user"}}},
        {**good, "value": {"chatmessage": {**message, "createdAt": 0.5}}},
        {**good, "type": "chat"},
    ]
    assert [p.code for p in check_prediction(CHAT, {"result": wrong})] == [
        "bad-value",
        "bad-value",
        "wrong-type",
    ]


TOOLS = """<View>
  <Image name="image" value="$image"/>
  <Video name="video" value="$video"/>
  <Labels name="kind" toName="image"><Label value="Car"/></Labels>
  <Rectangle name="box" toName="image"/>
  <Labels name="who" toName="video"><Label value="Man"/></Labels>
  <VideoRectangle name="track" toName="video"/>
</View>"""


def test_labels_merged_with_a_tool_on_the_same_object():
    box = {"x": 1, "y": 1, "width": 5, "height": 5, "rotation": 0}
    merged = one("kind", "image", "rectanglelabels", {**box, "rectanglelabels": ["Car"]}, **IMAGE)
    frames = {
        "framesCount": 9,
        "duration": 1.0,
        "sequence": [GOOD["track"]["value"]["sequence"][0]],
    }
    video = one("who", "video", "videorectanglelabels", {**frames, "labels": ["Man"]})
    assert check_prediction(TOOLS, {"result": [merged, video]}) == []
    wrong = [
        {**merged, "value": {**box, "rectanglelabels": ["Bus"]}},
        {**merged, "value": {**box, "width": 150, "rectanglelabels": ["Car"]}},
        {**merged, "value": box},
        {**merged, "type": "polygonlabels"},
        {**video, "value": {**frames, "framesCount": None, "labels": ["Man"]}},
    ]
    found = sorted({(p.index, p.code) for p in check_prediction(TOOLS, {"result": wrong})})
    assert found == [
        (0, "unknown-label"),
        (1, "out-of-range"),
        (2, "bad-value"),
        (3, "wrong-type"),
        (4, "bad-value"),
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("config", [MORE, TOOLS, CHAT], ids=["more", "tools", "chat"])
@given(data=st.data())
def test_never_raises_on_any_control(config, data):
    parsed = parse_label_config(config)
    names = [c.name for c in parsed.controls]
    types = [c.type for c in parsed.controls] + ["rectanglelabels", "videorectanglelabels"]
    values = st.dictionaries(
        st.sampled_from(["x", "width", "radiusX", "rotation", "start", "startOffset", "instant",
                         "text", "ranker", "selected", "sequence", "ranges", "framesCount",
                         "chatmessage", "labels", "rectanglelabels", "videorectanglelabels"]),
        json_values,
        max_size=6,
    )  # fmt: skip
    item = st.fixed_dictionaries(
        {"from_name": st.sampled_from(names), "type": st.sampled_from(types)},
        optional={
            "id": st.sampled_from(["a", "b"]),
            "to_name": st.sampled_from([o.name for o in parsed.objects]),
            "value": values | json_values,
            "original_width": json_values,
        },
    )
    result = data.draw(st.lists(item | json_values, max_size=4))
    problems = check_prediction(config, {"result": result, "score": data.draw(json_values)})
    assert all(isinstance(p, Problem) for p in problems)
