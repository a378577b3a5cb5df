"""A trainable object detector for Label Studio with no pretrained weights: colour models.

Label config (any RectangleLabels on an Image works; one colour model per label):

    <View>
      <Image name="image" value="$image"/>
      <RectangleLabels name="label" toName="image">
        <Label value="Squirrel"/>
      </RectangleLabels>
    </View>

How it detects: every pixel gets a colour bin (hue x saturation x value, OpenCV's HSV). For
each label the model knows, per bin, how many annotated pixels fell inside that label's boxes
and how many fell outside every box; their ratio is the probability that a pixel of that
colour belongs to the label. The probability map is smoothed, thresholded at 0.5, cleaned with
an opening and a closing, and each connected component (OpenCV) larger than a third of the
smallest annotated box becomes a box, scored by its mean probability.

Before any training it predicts the first label on saturated brown-ish blobs (a documented,
weak prior); afterwards, only labels that have annotated boxes.

Training: "Start Training" refits from Label Studio's API (`event.annotated_tasks()`);
annotation events and the legacy /train add the annotations they carry; an event without
credentials is never trained on (a refit from the API instead, or nothing). Each change gives
a new version (squirrel-1, squirrel-2, ...); `save`/`load` keep the per-task colour counts.

Serve it:  relaxml serve examples/squirrel/model.py:Squirrel
README.md (beside this file) says more.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from relaxml import (
    Context,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
    TrainingEvent,
)
from relaxml.labels import Target, find_target, percent_to_box

BINS = (18, 8, 8)  # hue (OpenCV: 0-179), saturation, value
N_BINS = BINS[0] * BINS[1] * BINS[2]
WORK_SIDE = 320  # images are analysed with their longer side at most this many pixels
PRIOR_AREA = 0.002  # the prior's smallest blob, as a fraction of the image
Counts = NDArray[np.float64]


def target_of(label_config: str) -> Target:
    """The first RectangleLabels with labels on an Image of a label config."""
    return find_target(label_config, "RectangleLabels", "Image", with_labels=True)


def read_image(path: Path) -> NDArray[np.uint8]:
    """An image file as RGB pixels, turned as its EXIF orientation says (as browsers show it)."""
    with Image.open(path) as image:
        return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def colour_bins(rgb: NDArray[np.uint8]) -> tuple[NDArray[np.intp], float]:
    """Each pixel's colour bin, on a copy whose longer side is at most WORK_SIDE; the scale."""
    height, width = rgb.shape[:2]
    scale = min(1.0, WORK_SIDE / max(height, width))
    small: NDArray[Any] = rgb
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV).astype(np.intp)
    h = np.minimum(hsv[..., 0] * BINS[0] // 180, BINS[0] - 1)
    s = hsv[..., 1] * BINS[1] // 256
    v = hsv[..., 2] * BINS[2] // 256
    return (h * BINS[1] + s) * BINS[2] + v, scale


def prior_table() -> Counts:
    """The untrained model: saturated, mid-bright, orange-to-brown colours score 0.75."""
    hue = np.arange(BINS[0])[:, None, None] * 180 / BINS[0]  # OpenCV's half degrees
    sat = np.arange(BINS[1])[None, :, None] * 256 / BINS[1]
    val = np.arange(BINS[2])[None, None, :] * 256 / BINS[2]
    brown = (hue >= 0) & (hue < 25) & (sat >= 96) & (val >= 64) & (val < 224)
    return np.where(brown, 0.75, 0.0).reshape(N_BINS)


@dataclass(frozen=True)
class Example:
    """One annotated task: its pixel counts per colour bin inside each label's boxes and
    outside every box, and the smallest box area per label (a fraction of the image)."""

    signature: str  # the image value and boxes, to tell whether anything changed
    inside: Mapping[str, Counts]
    outside: Counts
    smallest: Mapping[str, float]


@dataclass(frozen=True)
class Detector:
    """Per label, the probability of each colour bin, and the smallest blob kept."""

    tables: Mapping[str, Counts]
    min_area: Mapping[str, float]
    trained: bool = True

    @classmethod
    def prior(cls, labels: tuple[str, ...]) -> Detector:
        """The untrained detector: the brown prior, for the first of `labels` only."""
        tables = {label: prior_table() for label in labels[:1]}
        return cls(tables, dict.fromkeys(tables, PRIOR_AREA), trained=False)

    @classmethod
    def from_examples(cls, examples: Iterable[Example]) -> Detector:
        """The colour tables learnt from `examples` (untrained without any)."""
        examples = list(examples)
        if not examples:
            return cls({}, {}, trained=False)
        inside: dict[str, Counts] = {}
        outside = np.zeros(N_BINS)
        smallest: dict[str, float] = {}
        for example in examples:
            outside += example.outside
            for label, counts in example.inside.items():
                inside[label] = inside.get(label, np.zeros(N_BINS)) + counts
                smallest[label] = min(smallest.get(label, 1.0), example.smallest[label])
        total = outside + sum(inside.values(), np.zeros(N_BINS)) + 1.0  # +1: unseen colours
        tables = {label: counts / total for label, counts in inside.items()}
        return cls(tables, {label: area / 3 for label, area in smallest.items()})

    def detect(
        self, rgb: NDArray[np.uint8]
    ) -> list[tuple[str, tuple[float, float, float, float], float]]:
        """(label, xyxy box in pixels of `rgb`, score) for every blob found."""
        bins, scale = colour_bins(rgb)
        found = []
        for label, table in self.tables.items():
            probability = cv2.GaussianBlur(table[bins].astype(np.float32), (5, 5), 1.2)
            mask: NDArray[Any] = (probability > 0.5).astype(np.uint8)
            mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
            mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
            count, components, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
            min_pixels = self.min_area[label] * mask.size
            for index in range(1, count):
                x, y, w, h, area = (int(v) for v in stats[index])
                if area < min_pixels:
                    continue
                score = float(probability[components == index].mean())
                box = (x / scale, y / scale, (x + w) / scale, (y + h) / scale)
                found.append((label, box, min(1.0, score)))
        return found


def last_boxes(
    annotations: Sequence[dict[str, Any]], target: Target
) -> list[tuple[str, dict[str, float]]] | None:
    """(label, percent value) of the latest annotation's rectangles; None without annotations
    (an annotation without rectangles says: nothing here)."""
    if not annotations:
        return None
    return [
        (label, item["value"])
        for item in target.results_in(annotations[-1:])
        for label in item["value"].get("rectanglelabels") or []
        if label in target.labels and not item["value"].get("rotation")
    ]


def count_pixels(
    rgb: NDArray[np.uint8], boxes: list[tuple[str, dict[str, float]]], signature: str
) -> Example:
    """The colour counts of one annotated image."""
    bins, _ = colour_bins(rgb)
    height, width = bins.shape
    covered = np.zeros(bins.shape, bool)
    inside: dict[str, Counts] = {}
    smallest: dict[str, float] = {}
    for label, value in boxes:
        x0, y0, x1, y1 = percent_to_box(value, (width, height))
        region = (slice(max(0, round(y0)), round(y1)), slice(max(0, round(x0)), round(x1)))
        covered[region] = True
        counts = np.bincount(bins[region].ravel(), minlength=N_BINS).astype(np.float64)
        inside[label] = inside.get(label, np.zeros(N_BINS)) + counts
        area = value["width"] * value["height"] / 10_000
        smallest[label] = min(smallest.get(label, 1.0), area)
    outside = np.bincount(bins[~covered], minlength=N_BINS).astype(np.float64)
    return Example(signature, inside, outside, smallest)


class Squirrel(LabelStudioModel):
    """Detects objects by their colour, learnt from the boxes annotators draw."""

    model_version = "squirrel-0"
    delivery = "auto"  # bulk Retrieve Predictions is delivered in the background

    def __init__(self) -> None:
        self.examples: dict[int, Example] = {}  # task id -> its annotated colour counts
        self.generation = 0
        self.lock = threading.Lock()
        self.detector = Detector.from_examples([])

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        detector = self.detector  # one consistent snapshot, even while fit runs
        if not detector.trained:
            detector = Detector.prior(target.labels)
        return [self.detect(task, target, detector, context) for task in tasks]

    def detect(
        self, task: Task, target: Target, detector: Detector, context: Context
    ) -> Prediction | None:
        """The boxes found in the task's image (an empty prediction when there are none)."""
        value = task.data.get(target.data_key)
        if not isinstance(value, str):
            return None
        rgb = read_image(context.local_path(value, task))
        size = (rgb.shape[1], rgb.shape[0])
        build = ResultBuilder(target.config)
        for label, box, score in detector.detect(rgb):
            if label in target.labels:
                build.rectangle(
                    box, label, image_size=size, from_name=target.from_name, score=score
                )
        return build.prediction()

    def fit(self, event: TrainingEvent) -> str | None:
        if not event.label_config:
            return None
        target = target_of(event.label_config)
        with self.lock:
            # "Start Training" refits on everything annotated in Label Studio; an annotation
            # event adds what it carries; a payload sent without credentials is never trained
            # on. `event.refits` and `event.training_tasks()` apply these rules.
            examples: dict[int, Example] = {} if event.refits else dict(self.examples)
            for task in event.training_tasks():
                example = self.example_of(task, target, event)
                if example is not None:
                    examples[task["id"]] = example
            if event.should_stop():
                return None  # cancelled: the result would be discarded
            if examples.keys() == self.examples.keys() and all(
                examples[k].signature == self.examples[k].signature for k in examples
            ):
                return None
            self.detector = Detector.from_examples(examples.values())
            self.examples = examples
            self.generation += 1
            return f"squirrel-{self.generation}"

    def example_of(
        self, task: dict[str, Any], target: Target, event: TrainingEvent
    ) -> Example | None:
        """The task's colour counts, from its latest annotation."""
        task_id, data = task.get("id"), task.get("data")
        value = data.get(target.data_key) if isinstance(data, dict) else None
        if not isinstance(task_id, int) or not isinstance(value, str):
            return None
        boxes = last_boxes(task["annotations"], target)
        if boxes is None:
            return None
        corners = [
            [label, *(round(v[k], 4) for k in ("x", "y", "width", "height"))] for label, v in boxes
        ]
        signature = json.dumps({"image": value, "boxes": corners})
        previous = self.examples.get(task_id)
        if previous is not None and previous.signature == signature:
            return previous
        return count_pixels(read_image(event.local_path(value, task)), boxes, signature)

    def save(self, path: Path) -> None:
        rows: list[Counts] = []
        meta: dict[str, Any] = {"generation": self.generation, "examples": {}}
        for task_id, example in self.examples.items():
            inside = {}
            for label, counts in example.inside.items():
                inside[label] = len(rows)
                rows.append(counts)
            meta["examples"][task_id] = {
                "signature": example.signature,
                "inside": inside,  # label -> its row in counts.npy
                "outside": len(rows),
                "smallest": dict(example.smallest),
            }
            rows.append(example.outside)
        np.save(path / "counts.npy", np.array(rows).reshape(len(rows), N_BINS))
        (path / "examples.json").write_text(json.dumps(meta))

    def load(self, path: Path) -> None:
        meta = json.loads((path / "examples.json").read_text())
        rows = np.load(path / "counts.npy")
        self.examples = {
            int(task_id): Example(
                entry["signature"],
                {label: rows[row] for label, row in entry["inside"].items()},
                rows[entry["outside"]],
                entry["smallest"],
            )
            for task_id, entry in meta["examples"].items()
        }
        self.generation = meta["generation"]
        self.detector = Detector.from_examples(self.examples.values())
