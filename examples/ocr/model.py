"""OCR for Label Studio with Tesseract: one box and one transcription per line of text.

Label config: Label Studio's OCR template (`label_config.xml` beside this file), or any
`<Image>` with a `<Rectangle>` (and `<Labels>`) or `<RectangleLabels>`, and a
`<TextArea perRegion="true">` on it.

`predict` runs Tesseract (`pytesseract.image_to_data`) on the task's image and returns, per line
it reads, a rectangle with a label and the line's text in the TextArea (same region id), scored
by the mean of Tesseract's word confidences (0..1).

Tesseract itself is not retrained. From each annotated region that overlaps a line Tesseract
reads on the same image, `fit` learns corrections (words annotators write differently from what
Tesseract read: misreadings, or house rules such as `Qty` -> `Quantity`; applied when the word
is read again) and labels (which label annotators give to lines with a given word).

Training follows the sentiment example: START_TRAINING refits from Label Studio's API, annotation
events add what they carry, unauthenticated payloads are never trained on. Each change gives a
new version (ocr-1, ocr-2, ...); `save`/`load` keep it.

Serve it:  relaxml serve examples/ocr/model.py:OCR
README.md (beside this file) says more.
"""

from __future__ import annotations

import difflib
import json
import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytesseract
from PIL import Image

from relaxml import (
    Context,
    LabelConfig,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
    TrainingEvent,
    parse_label_config,
)

Box = tuple[float, float, float, float]
"""x0, y0, x1, y1 in pixels."""

LINE_LEVEL, WORD_LEVEL = 4, 5
"""The levels of `image_to_data`'s rows: 1 page, 2 block, 3 paragraph, 4 line, 5 word."""

MATCH_IOU = 0.3
"""How much an annotated region must overlap a recognised line to learn from the pair."""


@dataclass(frozen=True)
class Target:
    """Where predictions go: the Image (and its data key), the control the boxes are written
    with (a `RectangleLabels`, the `Labels` beside a `Rectangle`, or a bare `Rectangle`), the
    per-region TextArea, and the labels a line may get (none for a bare `Rectangle`)."""

    config: LabelConfig
    data_key: str
    image: str
    box_control: str
    text_control: str
    labels: tuple[str, ...]


def target_of(label_config: str) -> Target:
    """The first Image with a rectangle tool and a per-region TextArea in a label config."""
    config = parse_label_config(label_config)
    for image in config.objects_of_type("image"):
        if image.value_key is None:
            continue
        controls = config.controls_for(image.name)
        boxes = [c for c in controls if c.type in ("rectanglelabels", "rectangle")]
        texts = [c for c in controls if c.type == "textarea" and c.per_region]
        if not boxes or not texts:
            continue
        tool = boxes[0]
        if tool.type == "rectangle":  # a Labels beside it gives its boxes their labels
            tool = next((c for c in controls if c.type == "labels"), tool)
        labels = () if tool.type == "rectangle" or tool.dynamic_labels else tool.label_names
        return Target(config, image.value_key, image.name, tool.name, texts[0].name, labels)
    raise ValueError(
        "the label config needs an <Image> with a <Rectangle> (or <RectangleLabels>) and a "
        '<TextArea perRegion="true"> on it: add them to use this model'
    )


@dataclass(frozen=True)
class Line:
    """One line of text Tesseract read: its words, its box and its confidence (0..1)."""

    words: tuple[str, ...]
    box: Box
    confidence: float


def read_lines(image: Image.Image, lang: str = "eng", config: str = "--psm 3") -> list[Line]:
    """Tesseract's lines on the image: each line's box (Tesseract's level-4 rows) and its words
    (level 5), scored by the mean of the words' confidences."""
    data = pytesseract.image_to_data(
        image, lang=lang, config=config, output_type=pytesseract.Output.DICT
    )
    boxes: dict[tuple[int, int, int], Box] = {}
    words: dict[tuple[int, int, int], list[tuple[str, float]]] = defaultdict(list)
    for i, level in enumerate(data["level"]):
        key = (data["block_num"][i], data["par_num"][i], data["line_num"][i])
        x, y, w, h = (float(data[k][i]) for k in ("left", "top", "width", "height"))
        text, conf = str(data["text"][i]).strip(), float(data["conf"][i])
        if level == LINE_LEVEL:
            boxes[key] = (x, y, x + w, y + h)
        elif level == WORD_LEVEL and text and conf >= 0:
            words[key].append((text, conf))
    lines = []
    for key, found in words.items():
        confidence = sum(conf for _, conf in found) / len(found) / 100
        line_words = tuple(text for text, _ in found)
        lines.append(Line(line_words, boxes[key], min(1.0, max(0.0, confidence))))
    return sorted(lines, key=lambda line: (line.box[1], line.box[0]))


def open_rgb(path: Path) -> Image.Image:
    """An image file as RGB (Tesseract reads grey levels; palettes and alpha are flattened)."""
    with Image.open(path) as opened:
        image: Image.Image = opened.convert("RGB")
    return image


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Pair:
    """What Tesseract read on a region and what an annotator wrote there (and the label)."""

    read: tuple[str, ...]
    written: tuple[str, ...]
    label: str | None


@dataclass(frozen=True)
class Lexicon:
    """What fit learnt from the pairs: word corrections and labels by word."""

    corrections: dict[str, str] = field(default_factory=dict)
    labels: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def learn(cls, pairs: Iterable[Pair]) -> Lexicon:
        """Count every aligned (read, written) word; keep the writings that differ."""
        votes: dict[str, Counter[str]] = defaultdict(Counter)
        labels: dict[str, Counter[str]] = defaultdict(Counter)
        for pair in pairs:
            for read, written in aligned_words(pair.read, pair.written):
                votes[read][written] += 1
            for word in pair.written if pair.label else ():
                labels[word][pair.label or ""] += 1
        corrections = {}
        for read, counter in votes.items():
            # the most frequent writing; on a tie, the word as read, then alphabetical order
            best = min(sorted(counter), key=lambda w: (-counter[w], w != read))
            if best != read:
                corrections[read] = best
        return cls(corrections, dict(labels))

    def correct(self, words: Sequence[str]) -> list[str]:
        """The words with every learnt correction applied."""
        return [self.corrections.get(word, word) for word in words]

    def label(self, words: Sequence[str], labels: Sequence[str]) -> str | None:
        """The label annotators gave most to lines with these words, else the first label."""
        votes: Counter[str] = Counter()
        for word in words:
            votes.update(self.labels.get(word, Counter()))
        known = [label for label in labels if votes[label] > 0]
        if known:
            return max(known, key=lambda label: votes[label])
        return labels[0] if labels else None


def aligned_words(read: Sequence[str], written: Sequence[str]) -> list[tuple[str, str]]:
    """Word pairs of two transcriptions of one line: equal runs, and replaced runs of equal
    length word by word (insertions, deletions and uneven replacements teach nothing)."""
    pairs: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, list(read), list(written), autojunk=False)
    for tag, i0, i1, j0, j1 in matcher.get_opcodes():
        if tag in ("equal", "replace") and i1 - i0 == j1 - j0:
            pairs.extend(zip(read[i0:i1], written[j0:j1], strict=True))
    return pairs


@dataclass(frozen=True)
class Region:
    """An annotated region: its box in pixels, the words written for it, its label."""

    box: Box
    words: tuple[str, ...]
    label: str | None


def annotated_regions(
    annotations: Iterable[dict[str, Any]], target: Target, size: tuple[int, int]
) -> list[Region]:
    """Each transcribed region of a task's annotations (the items of one region share its id:
    the box, its label and its transcription)."""
    found = []
    for annotation in annotations:
        regions: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in annotation.get("result") or []:
            if isinstance(item, dict) and item.get("to_name") == target.image:
                regions[str(item.get("id"))].append(item)
        for items in regions.values():
            values = [i.get("value") or {} for i in items]
            geometry = next((v for v in values if "width" in v and "height" in v), None)
            texts = [
                text
                for item, value in zip(items, values, strict=True)
                if item.get("from_name") == target.text_control
                for text in value.get("text") or []
                if isinstance(text, str)
            ]
            labels = [
                label
                for value in values
                for key, names in value.items()
                if key.endswith("labels") and isinstance(names, list)
                for label in names
                if isinstance(label, str)
            ]
            if geometry is not None and texts:
                box = pixel_box(geometry, size)
                found.append(Region(box, tuple(" ".join(texts).split()), next(iter(labels), None)))
    return found


def pixel_box(value: dict[str, Any], size: tuple[int, int]) -> Box:
    """A result's box (percentages of the image) in pixels."""
    width, height = size
    x, y = float(value["x"]) * width / 100, float(value["y"]) * height / 100
    return (
        x,
        y,
        x + float(value["width"]) * width / 100,
        y + float(value["height"]) * height / 100,
    )


def pairs_of(image: Image.Image, regions: Sequence[Region]) -> list[Pair]:
    """Each annotated region paired with the recognised line that overlaps it most."""
    lines = read_lines(image) if regions else []
    pairs = []
    for region in regions:
        best = max(lines, key=lambda line: iou(line.box, region.box), default=None)
        if best is not None and iou(best.box, region.box) >= MATCH_IOU:
            pairs.append(Pair(best.words, region.words, region.label))
    return pairs


class OCR(LabelStudioModel):
    """Tesseract lines as rectangles with per-region transcriptions, corrected by annotators."""

    model_version = "ocr-0"

    def __init__(self) -> None:
        self.pairs: dict[int, list[Pair]] = {}  # task id -> its (read, written) pairs
        self.generation = 0
        self.lock = threading.Lock()
        self.lexicon = Lexicon()

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        lexicon = self.lexicon  # one consistent snapshot, even while fit runs
        return [self.read_task(task, target, lexicon, context) for task in tasks]

    def read_task(
        self, task: Task, target: Target, lexicon: Lexicon, context: Context
    ) -> Prediction | None:
        """One rectangle and one transcription per line Tesseract reads on the task's image."""
        value = task.data.get(target.data_key)
        if not isinstance(value, str):
            return None
        image = open_rgb(context.local_path(value, task))
        build = ResultBuilder(target.config)
        for line in read_lines(image):
            words = lexicon.correct(line.words)
            label = lexicon.label(words, target.labels)
            box = build.rectangle(
                line.box,
                label,
                image_size=image.size,
                from_name=target.box_control,
                to_name=target.image,
                score=line.confidence,
            )
            text = " ".join(words)
            build.textarea(text, from_name=target.text_control, region=box, score=line.confidence)
        return build.prediction()

    def fit(self, event: TrainingEvent) -> str | None:
        if not event.label_config:
            return None
        target = target_of(event.label_config)
        with self.lock:
            # "Start Training" refits on everything annotated in Label Studio; an annotation
            # event adds what it carries; a payload sent without credentials is never trained
            # on. `event.refits` and `event.training_tasks()` apply these rules.
            pairs: dict[int, list[Pair]] = {} if event.refits else dict(self.pairs)
            for task in event.training_tasks():
                task_id, data = task.get("id"), task.get("data")
                value = data.get(target.data_key) if isinstance(data, dict) else None
                if not isinstance(task_id, int) or not isinstance(value, str):
                    continue
                image = open_rgb(event.local_path(value, task))
                regions = annotated_regions(task["annotations"], target, image.size)
                pairs[task_id] = pairs_of(image, regions)  # replaces what the task taught
                if not pairs[task_id]:
                    del pairs[task_id]
            if event.should_stop():
                return None  # cancelled: the result would be discarded
            if pairs == self.pairs:
                return None
            self.pairs = pairs
            self.lexicon = Lexicon.learn(p for task_pairs in pairs.values() for p in task_pairs)
            self.generation += 1
            return f"ocr-{self.generation}"

    def save(self, path: Path) -> None:
        state = {
            "generation": self.generation,
            "pairs": {
                task_id: [[p.read, p.written, p.label] for p in task_pairs]
                for task_id, task_pairs in self.pairs.items()
            },
        }
        (path / "pairs.json").write_text(json.dumps(state))

    def load(self, path: Path) -> None:
        state = json.loads((path / "pairs.json").read_text())
        self.generation = state["generation"]
        self.pairs = {
            int(task_id): [Pair(tuple(r), tuple(w), label) for r, w, label in task_pairs]
            for task_id, task_pairs in state["pairs"].items()
        }
        self.lexicon = Lexicon.learn(p for task_pairs in self.pairs.values() for p in task_pairs)
