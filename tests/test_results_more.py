"""The builders for Chat, Pairwise, Ranker, ParagraphLabels, VideoRectangle (with Labels on the
video), TimelineLabels and Labels on an image: what they write, what they refuse, and that both
`check_prediction` and Label Studio 1.23.2's own validator accept every item they write."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from relaxml.labels.results import ResultBuilder, ResultError, UnknownLabelError
from relaxml.labels.validation import check_prediction

from .support.validator_reference import reference_python, run_validator

CONFIG = """<View>
  <Chat name="chat" value="$chat"/>
  <Text name="answer1" value="$answer1"/>
  <Text name="answer2" value="$answer2"/>
  <Pairwise name="comparison" toName="answer1,answer2"/>
  <List name="results" value="$items" title="Results"/>
  <Ranker name="rank" toName="results"/>
  <Paragraphs name="dialogue" value="$dialogue" layout="dialogue"/>
  <ParagraphLabels name="intent" toName="dialogue">
    <Label value="Question" predicted_values="q,ask"/>
    <Label value="Answer"/>
  </ParagraphLabels>
  <Video name="video" value="$video" framerate="25"/>
  <VideoRectangle name="box" toName="video"/>
  <Labels name="videoLabels" toName="video">
    <Label value="Car" predicted_values="automobile"/>
    <Label value="Person"/>
  </Labels>
  <TimelineLabels name="actions" toName="video">
    <Label value="Running"/>
    <Label value="Walking"/>
  </TimelineLabels>
  <Image name="image" value="$image"/>
  <Rectangle name="rect" toName="image"/>
  <Brush name="paint" toName="image"/>
  <Labels name="imageLabels" toName="image">
    <Label value="Cat" predicted_values="kitty"/>
    <Label value="Dog"/>
  </Labels>
</View>"""

BUCKETS = """<View>
  <List name="results" value="$items" title="Results"/>
  <Ranker name="rank" toName="results">
    <Bucket name="relevant" title="Relevant"/>
    <Bucket name="biased" title="Biased"/>
  </Ranker>
</View>"""


OCR = """<View>
  <OcrLabels name="ocr" toName="pdf">
    <Label value="Typo"/>
    <Label value="Incorrect Amount" predicted_values="amount"/>
  </OcrLabels>
  <Pdf name="pdf" value="$pdf"/>
</View>"""


def ocr_items() -> ResultBuilder:
    """OCR regions on a PDF page of 612 x 792 points (US Letter)."""
    build = ResultBuilder(OCR)
    build.ocr_region((61.2, 79.2, 306, 158.4), "typo", page_size=(612, 792), text="Totl", score=0.8)
    build.ocr_region((0, 0, 0.5, 0.1), "amount", page_size=(612, 792), unit="fraction",
                     page_index=2, format="xywh")  # fmt: skip
    return build


def all_builders() -> ResultBuilder:
    """One item of each new builder (and its variants) on CONFIG."""
    build = ResultBuilder(CONFIG)
    build.chat_message("Paris is the capital.", created_at=1_700_000_000_000, score=0.7)
    build.chat_message("What is the capital?", role="user")
    build.pairwise("right")
    build.pairwise("answer1")
    build.ranker(["r2", "r1", "r3"])
    build.paragraph_span(0, 0, "q", start_offset=0, end_offset=5, text="Hello")
    build.paragraph_span(1, 3, "Answer", start_offset=2, end_offset=0)
    build.video_rectangle(
        [(1, (64, 36, 192, 108)), (10, (80, 40, 208, 112))],
        "automobile",
        frame_size=(640, 360),
        fps=25,
        frames_count=100,
        score=0.9,
    )
    build.video_rectangle(
        [(5, (0, 0, 640, 360), True)], frame_size=(640, 360), fps=25, frames_count=100
    )
    build.timeline([(1, 10), (20, 30)], "Running", frames_count=100)
    build.timeline((40, 40), "walking")
    build.rectangle((10, 20, 110, 220), "kitty", image_size=(640, 480), score=0.8)
    build.rectangle((0, 0, 64, 48), None, image_size=(640, 480))
    mask = np.zeros((48, 64), dtype=np.uint8)
    mask[10:20, 10:30] = 1
    build.brush(mask, "Dog", from_name="imageLabels")
    return build


def test_chat_message():
    build = ResultBuilder(CONFIG)
    item = build.chat_message("Paris.", created_at=1_700_000_000_000, score=0.5)
    assert item == {
        "id": item["id"],
        "from_name": "chat",
        "to_name": "chat",
        "type": "chatmessage",
        "value": {
            "chatmessage": {"role": "assistant", "content": "Paris.", "createdAt": 1700000000000}
        },
        "score": 0.5,
    }
    assert (
        ResultBuilder(CONFIG).chat_message("Paris.", created_at=1_700_000_000_000)["id"]
        == (item["id"])
    )
    for bad, match in (
        ({"content": 3}, "content must be a string"),
        ({"content": "x", "role": ""}, "role must be a non-empty string"),
        ({"content": "x", "created_at": 1.5}, "created_at must be an integer"),
    ):
        with pytest.raises(ResultError, match=match):
            build.chat_message(**bad)  # type: ignore[arg-type]


def test_pairwise():
    build = ResultBuilder(CONFIG)
    assert build.pairwise("left")["value"] == {"selected": "left"}
    assert build.pairwise("answer2")["value"] == {"selected": "right"}
    assert build.result[0]["to_name"] == "answer1"
    with pytest.raises(
        ResultError, match=r"needs 'left' or 'right' \(or one of answer1, answer2\)"
    ):
        build.pairwise("middle")


def test_ranker_with_and_without_buckets():
    build = ResultBuilder(CONFIG)
    assert build.ranker(["b", "a"])["value"] == {"ranker": {"rank": ["b", "a"]}}
    buckets = ResultBuilder(BUCKETS)
    item = buckets.ranker({"relevant": ["a", "c"], "biased": ["b"]})
    assert item["value"] == {"ranker": {"relevant": ["a", "c"], "biased": ["b"]}}
    assert check_prediction(BUCKETS, {"result": buckets.result}) == []
    with pytest.raises(ResultError, match="more than once"):
        build.ranker({"relevant": ["a"], "biased": ["a"]})
    with pytest.raises(ResultError, match="more than once"):
        build.ranker(["a", "a"])
    with pytest.raises(ResultError, match="a list of item ids"):
        build.ranker("a")
    with pytest.raises(ResultError, match="ids must be strings"):
        build.ranker([1, 2])  # type: ignore[list-item]


def test_paragraph_span():
    build = ResultBuilder(CONFIG)
    item = build.paragraph_span(0, 2, "ask", start_offset=3, end_offset=7, text="...")
    assert item["to_name"] == "dialogue"
    assert item["value"] == {
        "start": "0",
        "end": "2",
        "startOffset": 3,
        "endOffset": 7,
        "text": "...",
        "paragraphlabels": ["Question"],
    }
    with pytest.raises(ResultError, match="0 <= start <= end"):
        build.paragraph_span(2, 1, "Answer", start_offset=0, end_offset=1)
    with pytest.raises(ResultError, match="offsets >= 0"):
        build.paragraph_span(0, 1, "Answer", start_offset=-1, end_offset=1)
    with pytest.raises(ResultError, match="before start_offset"):
        build.paragraph_span(1, 1, "Answer", start_offset=5, end_offset=2)
    with pytest.raises(ResultError, match="integer paragraph indexes"):
        build.paragraph_span(0.5, 1, "Answer", start_offset=0, end_offset=1)  # type: ignore[arg-type]
    with pytest.raises(UnknownLabelError, match="'Greeting' is not a label"):
        build.paragraph_span(0, 0, "Greeting", start_offset=0, end_offset=1)


def test_video_rectangle_keyframes_in_pixels_and_frames():
    build = ResultBuilder(CONFIG)
    item = build.video_rectangle(
        [(10, (80, 40, 208, 112)), (1, (64, 36, 192, 108))],
        "automobile",
        frame_size=(640, 360),
        fps=25,
        frames_count=100,
    )
    assert item["from_name"] == "box"
    assert item["type"] == "videorectangle"
    value = item["value"]
    assert value["framesCount"] == 100
    assert value["duration"] == 4.0
    assert value["labels"] == ["Car"]
    first, last = value["sequence"]
    assert first == {
        "frame": 1,
        "enabled": True,
        "x": 10.0,
        "y": 10.0,
        "width": 20.0,
        "height": 20.0,
        "rotation": 0.0,
        "time": 0.04,
    }
    assert (last["frame"], last["enabled"], last["time"]) == (10, False, 0.4)
    kept = build.video_rectangle(
        [(1, (0, 0, 10, 10), True)], frame_size=(640, 360), fps=25, frames_count=100
    )
    assert kept["value"]["sequence"][0]["enabled"] is True
    from_tag = build.video_rectangle([(50, (0, 0, 10, 10))], frame_size=(9, 9), frames_count=100)
    assert from_tag["value"]["sequence"][0]["time"] == 2.0  # framerate="25" of the Video tag
    dynamic = ResultBuilder(CONFIG.replace('framerate="25"', 'framerate="$fps"'))
    with pytest.raises(ResultError, match="framerate is '\\$fps', not a number: pass fps"):
        dynamic.video_rectangle([(1, (0, 0, 1, 1))], frame_size=(9, 9), frames_count=100)
    assert "labels" not in kept["value"]


def test_video_rectangle_refuses_and_clips():
    build = ResultBuilder(CONFIG)
    size = {"frame_size": (640, 360), "fps": 25, "frames_count": 100}
    clipped = build.video_rectangle([(1, (-2, 0, 641, 360))], **size)
    assert clipped["value"]["sequence"][0]["x"] == 0.0
    assert clipped["value"]["sequence"][0]["width"] == 100.0
    for keyframes, match in (
        ([(1, (0, 0, 900, 100))], "box"),
        ([(0, (0, 0, 10, 10))], "frame must be an integer >= 1"),
        ([(101, (0, 0, 10, 10))], r"past the video's last frame \(100\)"),
        ([(3, (0, 0, 10, 10)), (3, (0, 0, 20, 20))], "two keyframes at frame 3"),
        ([], "at least one keyframe"),
    ):
        with pytest.raises(ResultError, match=match):
            build.video_rectangle(keyframes, **size)  # type: ignore[arg-type]
    with pytest.raises(ResultError, match="fps must be a positive number"):
        build.video_rectangle([(1, (0, 0, 1, 1))], frame_size=(640, 360), fps=0, frames_count=9)
    with pytest.raises(ResultError, match="frames_count must be an integer"):
        build.video_rectangle([(1, (0, 0, 1, 1))], frame_size=(640, 360), fps=25, frames_count=0)
    with pytest.raises(UnknownLabelError, match="no Labels control of 'video' has"):
        build.video_rectangle([(1, (0, 0, 1, 1))], "Dog", **size)


def test_timeline():
    build = ResultBuilder(CONFIG)
    item = build.timeline([(1, 10), (20, 30)], "running", frames_count=30)
    assert item["to_name"] == "video"
    assert item["value"] == {
        "ranges": [{"start": 1, "end": 10}, {"start": 20, "end": 30}],
        "timelinelabels": ["Running"],
    }
    assert build.timeline((5, 5), "Walking")["value"]["ranges"] == [{"start": 5, "end": 5}]
    for ranges, match in (
        ([(10, 1)], "1 <= start <= end"),
        ([(0, 1)], "1 <= start <= end"),
        ([(1.5, 2)], "1 <= start <= end"),
        ([(1, 31)], "past the video's last frame"),
        ([], "at least one"),
    ):
        with pytest.raises(ResultError, match=match):
            build.timeline(ranges, "Running", frames_count=30)  # type: ignore[arg-type]
    with pytest.raises(ResultError, match="needs a label"):
        build.timeline([(1, 2)], None)


def test_ocr_region():
    first, second = ocr_items().result
    assert (first["from_name"], first["to_name"], first["type"]) == ("ocr", "pdf", "ocrlabels")
    assert first["value"] == {
        "x": pytest.approx(10.0),
        "y": pytest.approx(10.0),
        "width": pytest.approx(40.0),
        "height": pytest.approx(10.0),
        "rotation": 0.0,
        "ocrtext": "Totl",
        "ocrlabels": ["Typo"],
    }
    assert first["score"] == 0.8
    assert second["value"]["pageIndex"] == 2
    assert second["value"]["ocrlabels"] == ["Incorrect Amount"]
    assert "ocrtext" not in second["value"]
    assert check_prediction(OCR, ocr_items().prediction()) == []
    build = ResultBuilder(OCR)
    size = {"page_size": (612, 792)}
    with pytest.raises(ResultError, match="needs a label"):
        build.ocr_region((0, 0, 10, 10), None, **size)
    with pytest.raises(UnknownLabelError):
        build.ocr_region((0, 0, 10, 10), "Stamp", **size)
    with pytest.raises(ResultError, match="page_index must be an integer >= 0"):
        build.ocr_region((0, 0, 10, 10), "Typo", page_index=-1, **size)
    with pytest.raises(ResultError, match="text must be a string"):
        build.ocr_region((0, 0, 10, 10), "Typo", text=b"Totl", **size)  # type: ignore[arg-type]
    with pytest.raises(ResultError):
        build.ocr_region((0, 0, 700, 10), "Typo", **size)  # wider than the page


def test_labels_on_an_image_merge_with_the_tool():
    build = ResultBuilder(CONFIG)
    item = build.rectangle((64, 48, 192, 144), "kitty", image_size=(640, 480))
    assert (item["from_name"], item["type"]) == ("imageLabels", "rectanglelabels")
    assert item["value"]["rectanglelabels"] == ["Cat"]
    plain = build.rectangle((64, 48, 192, 144), image_size=(640, 480))
    assert (plain["from_name"], plain["type"]) == ("rect", "rectangle")
    named = build.brush(np.ones((4, 4), dtype=np.uint8), "Dog", from_name="imageLabels")
    assert (named["from_name"], named["type"]) == ("imageLabels", "brushlabels")
    with pytest.raises(ResultError, match="no <Labels> on its image"):
        build.rectangle((0, 0, 5, 5), "Horse", image_size=(640, 480))
    with pytest.raises(UnknownLabelError, match="'Horse' is not a label of Labels"):
        build.rectangle((0, 0, 5, 5), "Horse", image_size=(640, 480), from_name="imageLabels")
    with pytest.raises(ResultError, match="no <Polygon> tool"):
        build.polygon([(0, 0), (5, 0), (5, 5)], "Cat", image_size=(9, 9), from_name="imageLabels")


def test_check_prediction_accepts_every_builder_output():
    build = all_builders()
    assert len(build.result) == 14
    assert len({item["id"] for item in build.result}) == 14
    assert all_builders().result == build.result  # stable ids
    assert check_prediction(CONFIG, build.prediction()) == []


def test_label_studio_validator_accepts_every_builder_output():
    """Label Studio 1.23.2's own validator, over each item alone and the whole prediction."""
    if not reference_python().exists():
        reason = f"the Label Studio venv is missing ({reference_python()})"
        if os.environ.get("RELAXML_E2E", "").strip().lower() == "require":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    build = all_builders()
    buckets = ResultBuilder(BUCKETS)
    buckets.ranker({"relevant": ["a", "c"], "biased": ["b"]})
    predictions = [{"result": [item]} for item in build.result]
    predictions.append({"result": build.result, "score": 0.8})
    cases = [{"config": "new", "prediction": p} for p in predictions]
    cases.append({"config": "buckets", "prediction": {"result": buckets.result}})
    ocr = ocr_items()
    cases += [{"config": "ocr", "prediction": {"result": [item]}} for item in ocr.result]
    broken = copy.deepcopy(build.result[7])  # the validator is live: a box 150% wide fails
    broken["value"]["sequence"][0]["width"] = 150
    cases.append({"config": "new", "prediction": {"result": [broken]}})
    _, answers = run_validator({"new": CONFIG, "buckets": BUCKETS, "ocr": OCR}, cases)
    assert answers.pop()
    cases.pop()
    rejected = [
        (c["prediction"]["result"][0]["type"], a) for c, a in zip(cases, answers, strict=True) if a
    ]
    assert rejected == []
