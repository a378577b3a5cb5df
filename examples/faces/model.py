"""Faces: a frozen pretrained detector behind Label Studio (OpenCV's Haar face cascade).

The pattern for any pretrained model you do not train: load the weights once, when the model is
built, and turn each detection into a region of the project's label config. Here the weights are
the frontal-face Haar cascade that ships inside the opencv-python-headless 4.x wheel, so nothing
is downloaded.

Label config (any RectangleLabels on an Image with a "Face" label works; an "Eye" label, in the
same or another RectangleLabels on that Image, adds the eyes found inside each face):

    <View>
      <Image name="image" value="$image"/>
      <RectangleLabels name="faces" toName="image">
        <Label value="Face"/>
        <Label value="Eye"/>
      </RectangleLabels>
    </View>

Scores: the cascade's level weight w of a detection (the sum of its last stage, the margin by
which it passed) mapped to 0..1 by the logistic function 1 / (1 + e^-w). It orders detections;
it is not a calibrated probability.

Environment: FACES_CASCADE and FACES_EYE_CASCADE name other cascade XML files to load instead of
the bundled ones. The model version names the face cascade and a hash of its bytes, so another
file is another version and Label Studio predicts again.

Serve it:  relaxml serve examples/faces/model.py:Faces
README.md (beside this file) says more.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from relaxml import (
    Context,
    LabelConfig,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
    parse_label_config,
)

FACE_LABEL = "Face"
EYE_LABEL = "Eye"
FACE_CASCADE = "haarcascade_frontalface_default.xml"
EYE_CASCADE = "haarcascade_eye.xml"
SCALE_FACTOR = 1.1
"""How much the search window grows between scales (OpenCV's usual value)."""
MIN_NEIGHBORS = 5
"""How many overlapping raw detections a face needs to be kept (fewer: more false faces)."""
MAX_SIDE = 1280
"""Larger images are shrunk to this longest side for detection; boxes are scaled back."""
EYE_ZONE = 0.6
"""Eyes are looked for in this upper fraction of a face box (not around the mouth)."""
EYES_PER_FACE = 2

Box = tuple[float, float, float, float]
"""A box in pixels of the original image: (x, y, width, height)."""
Gray = NDArray[np.uint8]


def bundled_cascade(name: str) -> Path:
    """A cascade file shipped inside the opencv-python(-headless) 4.x wheel."""
    return Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]  # no stub for it


def load_cascade(path: Path, variable: str) -> cv2.CascadeClassifier:
    """Load a cascade XML file, or fail saying which environment variable names it."""
    if not path.is_file():
        raise ValueError(f"{variable}: no cascade file at {path}")
    cascade = cv2.CascadeClassifier()
    try:
        loaded = cascade.load(str(path))
    except cv2.error as exc:  # not even an OpenCV XML file
        loaded, why = False, f": {str(exc).split('error: ', 1)[-1].strip()}"
    else:
        why = ""
    if not loaded or cascade.empty():
        raise ValueError(f"{variable}: {path} is not a cascade OpenCV can load{why}")
    return cascade


def score_of(weight: float) -> float:
    """A detection's level weight mapped to 0..1 by the logistic function."""
    return 1.0 / (1.0 + math.exp(-weight))


@dataclass(frozen=True)
class Detection:
    """One region found by a cascade, in pixels of the original image."""

    box: Box
    score: float


@dataclass(frozen=True)
class FoundFace:
    """A face and the eyes found inside it (best first)."""

    face: Detection
    eyes: tuple[Detection, ...] = ()


class Detector:
    """The pretrained part, free of relaxml: grayscale image in, faces (and eyes) out."""

    def __init__(self, face_cascade: Path, eye_cascade: Path) -> None:
        self.faces = load_cascade(face_cascade, "FACES_CASCADE")
        self.eyes = load_cascade(eye_cascade, "FACES_EYE_CASCADE")
        self.lock = threading.Lock()  # one CascadeClassifier is not documented as thread-safe

    def detect(self, gray: Gray, *, eyes: bool = True) -> list[FoundFace]:
        """The faces of a grayscale image, highest score first, with their eyes if asked."""
        scale = min(1.0, MAX_SIDE / max(gray.shape))
        small = gray if scale == 1.0 else shrink(gray, scale)
        with self.lock:
            found = [
                FoundFace(face, self.find_eyes(small, face, scale) if eyes else ())
                for face in run(self.faces, small, scale)
            ]
        return sorted(found, key=lambda f: -f.face.score)

    def find_eyes(self, small: Gray, face: Detection, scale: float) -> tuple[Detection, ...]:
        """The (at most two) best eyes in the upper part of a face box."""
        x, y, w, h = (round(v * scale) for v in face.box)
        zone = small[y : y + round(h * EYE_ZONE), x : x + w]
        eyes = sorted(run(self.eyes, zone, scale), key=lambda e: -e.score)[:EYES_PER_FACE]
        return tuple(moved(eye, face.box[0], face.box[1]) for eye in eyes)


def moved(found: Detection, dx: float, dy: float) -> Detection:
    """The detection shifted by (dx, dy) pixels: from a face box's frame to the image's."""
    x, y, w, h = found.box
    return Detection((x + dx, y + dy, w, h), found.score)


def shrink(gray: Gray, scale: float) -> Gray:
    """The image resized by `scale` (< 1), averaging pixels."""
    size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
    return np.asarray(cv2.resize(gray, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def run(cascade: cv2.CascadeClassifier, gray: Gray, scale: float) -> list[Detection]:
    """One cascade over an image, boxes divided by `scale` (back to the original's pixels)."""
    if min(gray.shape) < 1:
        return []
    boxes, _levels, weights = cascade.detectMultiScale3(
        gray, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBORS, outputRejectLevels=True
    )
    found = []
    for box, weight in zip(boxes, np.ravel(weights), strict=True):
        x, y, w, h = (float(v) / scale for v in box)
        found.append(Detection((x, y, w, h), score_of(float(weight))))
    return found


def read_gray(path: Path) -> Gray | None:
    """The image file as 8-bit grayscale, or None when OpenCV cannot decode it."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    return None if image is None else np.asarray(image, dtype=np.uint8)


@dataclass(frozen=True)
class Target:
    """Where predictions go: the controls for faces (and eyes), their Image and its data key."""

    config: LabelConfig
    face_control: str
    eye_control: str | None
    to_name: str
    data_key: str


def target_of(label_config: str) -> Target:
    """The first RectangleLabels on an Image with a "Face" label, and an "Eye" label if any."""
    config = parse_label_config(label_config)
    boxes = config.controls_of_type("RectangleLabels")
    for control in boxes:
        if not (control.dynamic_labels or control.match_label(FACE_LABEL)):
            continue
        for image in config.objects_for(control):
            if image.type != "image" or image.value_key is None:
                continue
            eyes = (
                c.name
                for c in boxes
                if image.name in c.to_names and not c.dynamic_labels and c.match_label(EYE_LABEL)
            )
            return Target(config, control.name, next(eyes, None), image.name, image.value_key)
    raise ValueError(
        f'the label config has no <RectangleLabels> with a <Label value="{FACE_LABEL}"/> on an '
        "<Image>: add one to use this model"
    )


def cascade_version(path: Path) -> str:
    """A version naming the cascade file and its content: `<name>-<8 hex of its SHA-256>`."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
    return f"{path.stem.removeprefix('haarcascade_')}-{digest}"


class Faces(LabelStudioModel):
    """Face (and eye) boxes from OpenCV's pretrained Haar cascades; no training."""

    def __init__(self) -> None:
        face = Path(os.environ.get("FACES_CASCADE") or bundled_cascade(FACE_CASCADE))
        eye = Path(os.environ.get("FACES_EYE_CASCADE") or bundled_cascade(EYE_CASCADE))
        self.detector = Detector(face, eye)  # loaded once per process, never per request
        self.model_version = cascade_version(face)

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        if not context.label_config:
            return [None] * len(tasks)
        target = target_of(context.label_config)
        return [self.predict_task(task, target, context) for task in tasks]

    def predict_task(self, task: Task, target: Target, context: Context) -> Prediction | None:
        """One task's faces as RectangleLabels regions (None when there is no face)."""
        gray = self.read_image(task, target, context)
        faces = self.detector.detect(gray, eyes=target.eye_control is not None)
        if not faces:
            return None
        size = (gray.shape[1], gray.shape[0])
        build = ResultBuilder(target.config)
        for found in faces:
            add_box(build, found.face, FACE_LABEL, target.face_control, target, size)
            for eye in found.eyes:
                add_box(build, eye, EYE_LABEL, target.eye_control, target, size)
        return build.prediction(score=max(f.face.score for f in faces))

    def read_image(self, task: Task, target: Target, context: Context) -> Gray:
        """The task's image in grayscale; a ValueError naming the task when it cannot be had."""
        value: Any = task.data.get(target.data_key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"task {task.id} has no image URL under data[{target.data_key!r}]")
        gray = read_gray(context.local_path(value, task))
        if gray is None:
            raise ValueError(f"task {task.id}: {value} is not an image OpenCV can decode")
        return gray


def add_box(
    build: ResultBuilder,
    found: Detection,
    label: str,
    control: str | None,
    target: Target,
    size: tuple[int, int],
) -> None:
    """Add one detection as a rectangle of `control`, in pixels of an image of `size`."""
    build.rectangle(
        found.box,
        label,
        image_size=size,
        format="xywh",
        from_name=control,
        to_name=target.to_name,
        score=found.score,
    )
