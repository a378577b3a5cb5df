"""Predictions built with every `ResultBuilder` method, for end-to-end tests.

`BuilderModel` serves them through `relaxml serve`; the tests build the same predictions locally
and compare them with what Label Studio stored (the ids are content-derived, hence equal).
"""

from __future__ import annotations

from relaxml import Context, LabelStudioModel, Prediction, ResultBuilder, Task

IMAGE_SIZE = (320, 240)

IMAGE_CONFIG = """<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="box" toName="image">
    <Label value="Car" background="#ff0000" predicted_values="car,truck"/>
    <Label value="Person" background="#00ff00"/>
  </RectangleLabels>
  <PolygonLabels name="poly" toName="image"><Label value="Road"/></PolygonLabels>
  <KeyPointLabels name="kp" toName="image"><Label value="Nose"/></KeyPointLabels>
  <EllipseLabels name="ell" toName="image"><Label value="Wheel"/></EllipseLabels>
  <BrushLabels name="mask" toName="image">
    <Label value="Sky" background="#0000ff"/>
  </BrushLabels>
  <TextArea name="plate" toName="image" perRegion="true"/>
  <Choices name="weather" toName="image">
    <Choice value="Sunny"/><Choice value="Rainy"/>
  </Choices>
  <Rating name="quality" toName="image" maxRating="10"/>
  <Number name="count" toName="image" min="0"/>
  <DateTime name="taken" toName="image" only="date"/>
  <Taxonomy name="scene" toName="image">
    <Choice value="Outdoor"><Choice value="City"/><Choice value="Forest"/></Choice>
    <Choice value="Indoor"/>
  </Taxonomy>
</View>"""

TEXT_CONFIG = """<View>
  <Relations><Relation value="works_for"/></Relations>
  <Labels name="ner" toName="text">
    <Label value="PER"/><Label value="ORG"/>
  </Labels>
  <Text name="text" value="$text"/>
  <Choices name="sentiment" toName="text" choice="multiple">
    <Choice value="Positive"/><Choice value="Formal"/>
  </Choices>
  <TextArea name="summary" toName="text"/>
</View>"""

HTML_CONFIG = """<View>
  <HyperTextLabels name="ner" toName="page"><Label value="Title"/></HyperTextLabels>
  <HyperText name="page" value="$html"/>
</View>"""

AUDIO_CONFIG = """<View>
  <Labels name="speaker" toName="audio"><Label value="Alice"/><Label value="Bob"/></Labels>
  <Audio name="audio" value="$audio"/>
  <TextArea name="said" toName="audio" perRegion="true"/>
</View>"""

TIMESERIES_CONFIG = """<View>
  <TimeSeriesLabels name="activity" toName="ts"><Label value="Run"/></TimeSeriesLabels>
  <TimeSeries name="ts" value="$csv" valueType="url" timeColumn="time">
    <Channel column="speed"/>
  </TimeSeries>
</View>"""

TEXT = "Ada Lovelace worked with Babbage at the Analytical Engine Ltd."


def sky_mask() -> list[list[int]]:
    """The top third of the image, as nested lists (no NumPy needed)."""
    width, height = IMAGE_SIZE
    return [[1 if y < height // 3 else 0 for _ in range(width)] for y in range(height)]


def image_prediction(config: str = IMAGE_CONFIG) -> Prediction:
    """Every image control: regions, a per-region text, and whole-image classifications."""
    build = ResultBuilder(config)
    car = build.rectangle((40, 120, 200, 220), "truck", image_size=IMAGE_SIZE, score=0.91)
    build.textarea("AB-123", region=car)
    build.rectangle(
        (260, 60, 40, 80), "Person", image_size=IMAGE_SIZE, format="cxcywh", rotation=15
    )
    build.polygon([(0, 240), (160, 150), (320, 240)], "Road", image_size=IMAGE_SIZE, score=0.7)
    build.keypoint((160, 100), "nose", image_size=IMAGE_SIZE, width=1.5)
    build.ellipse((80, 215), (20, 12), "Wheel", image_size=IMAGE_SIZE, rotation=10)
    build.brush(sky_mask(), "Sky", score=0.88)
    build.choices("sunny", score=0.6)
    build.rating(7)
    build.number(3)
    build.datetime("2024-05-17")
    build.taxonomy([["Outdoor", "City"]])
    return build.prediction(score=0.8, model_version="builders-1")


def text_prediction() -> Prediction:
    """Spans with a relation, multiple choices and a text area."""
    build = ResultBuilder(TEXT_CONFIG)
    ada = build.span(0, 12, "PER", text=TEXT[0:12], score=0.99)
    org = build.span(38, 61, "org", text=TEXT[38:61])
    build.relation(ada, org, "works_for")
    build.choices(["Positive", "Formal"])
    build.textarea(["A person and an organisation."])
    return build.prediction(model_version="builders-1")


def html_prediction() -> Prediction:
    build = ResultBuilder(HTML_CONFIG)
    build.html_span(
        "/h1[1]/text()[1]", "/h1[1]/text()[1]", "Title", start_offset=0, end_offset=5, text="Hello"
    )
    return build.prediction(model_version="builders-1")


def audio_prediction() -> Prediction:
    build = ResultBuilder(AUDIO_CONFIG)
    alice = build.audio_segment(0.5, 2.25, "Alice", score=0.8)
    build.textarea("hello", region=alice)
    build.audio_segment(2.5, 4.0, "bob", channel=0)
    return build.prediction(model_version="builders-1")


def timeseries_prediction() -> Prediction:
    build = ResultBuilder(TIMESERIES_CONFIG)
    build.timeseries_span(10, 42, "run", score=0.5)
    return build.prediction(model_version="builders-1")


class BuilderModel(LabelStudioModel):
    """Answers every task of an image project with `image_prediction`."""

    model_version = "builders-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        config = context.label_config or IMAGE_CONFIG
        return [image_prediction(config) for _ in tasks]
