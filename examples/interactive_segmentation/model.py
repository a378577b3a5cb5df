"""Interactive segmentation for Label Studio's smart tools: SAM's workflow, without SAM's weights.

The annotator clicks positive points (a smart keypoint), negative points (an Alt-click with
it) or draws a box (a smart rectangle); each click is an interactive `/predict`, answered with
one brush mask of the prompt's label, computed by OpenCV's GrabCut:

- a box: outside it is sure background, inside probable foreground (GrabCut's rectangle
  initialisation);
- points only: probable foreground is the region joined to the positive points whose smoothed
  colour is close to theirs (and closer to theirs than to any negative point's); the rest is
  probable background;
- a positive point is a disc of sure foreground, a negative point a disc of sure background.

GrabCut then fits colour models to both sides and cuts along the image's edges. The mask keeps
what is joined to the positive points (all of it for a box alone). Each image is decoded,
downscaled to at most `max_side` pixels and smoothed once, and kept in `context.memo`, so the
next clicks on it only run GrabCut. An ordinary (non-interactive) call gets no prediction.

Label config: an `<Image>`, smart `<KeyPointLabels>` and/or `<RectangleLabels>`, and a
`<BrushLabels>` on the same image with the same labels (label_config.xml beside this file).

Serve it:  relaxml serve examples/interactive_segmentation/model.py:InteractiveSegmentation
README.md (beside this file) says more, and how to put SAM in GrabCut's place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from relaxml import (
    Context,
    LabelStudioModel,
    Prediction,
    ResultBuilder,
    Task,
)
from relaxml.labels import Prompt, Prompts, Target, find_target

Mask = NDArray[np.bool_]
Point = tuple[float, float]

MIN_TOLERANCE = 12.0
"""Smallest colour distance (CIELAB, about 2.3 is a just noticeable difference) that still
counts as "the colour of the clicked point"."""
TEXTURE_TOLERANCE = 3.0
"""A textured object's colours spread: the tolerance is this many times the local spread."""


def target_of(label_config: str, to_name: str | None = None) -> Target:
    """The first BrushLabels on an Image (the prompts' image, `to_name`, when given)."""
    return find_target(label_config, "BrushLabels", "Image", to_name=to_name)


@dataclass(frozen=True)
class PreparedImage:
    """An image made ready for GrabCut once, then kept in the memo for every click on it."""

    pixels: NDArray[np.uint8]
    """BGR, at the working size (the original, downscaled to `max_side` at most)."""
    lab: NDArray[np.float32]
    """CIELAB of the smoothed image, at the working size."""
    spread: NDArray[np.float32]
    """How much the colour varies around each pixel (its texture), in CIELAB units."""
    scale: float
    """Working size / original size."""
    size: tuple[int, int]
    """The original (width, height)."""

    @property
    def nbytes(self) -> int:
        """What the memo counts for it (`relaxml.memo.size_of` reads `nbytes`)."""
        return self.pixels.nbytes + self.lab.nbytes + self.spread.nbytes


def prepare(pixels: NDArray[np.uint8], max_side: int) -> PreparedImage:
    """Downscale a BGR image to `max_side` at most, smooth it, and measure its texture."""
    height, width = pixels.shape[:2]
    scale = min(1.0, max_side / max(width, height))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        pixels = np.asarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA), np.uint8)
    smooth = np.asarray(cv2.GaussianBlur(pixels, (0, 0), 2.0), np.float32) / 255
    lab = np.asarray(cv2.cvtColor(smooth, cv2.COLOR_BGR2Lab), np.float32)
    mean = np.asarray(cv2.blur(lab, (9, 9)), np.float32)
    variance = np.asarray(cv2.blur(lab * lab, (9, 9)), np.float32) - mean * mean
    spread = np.sqrt(np.clip(variance, 0, None).sum(axis=2)).astype(np.float32)
    return PreparedImage(pixels, lab, spread, scale, (width, height))


def read_image(path: Path) -> NDArray[np.uint8]:
    """A file's pixels as BGR (what GrabCut reads); a ValueError if OpenCV cannot decode it."""
    data = np.fromfile(str(path), dtype=np.uint8)
    pixels = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if pixels is None:
        raise ValueError(f"cannot decode {path.name} as an image")
    return np.asarray(pixels, dtype=np.uint8)


def disc(mask: NDArray[np.uint8], point: Point, radius: int, value: int) -> None:
    """Paint a disc of `value` centred on `point` (working pixels) into `mask`."""
    cv2.circle(mask, (round(point[0]), round(point[1])), radius, value, thickness=-1)


def pixel(point: Point, shape: tuple[int, ...]) -> tuple[int, int]:
    """The (x, y) pixel of `point`, kept inside an image of `shape` (height, width, ...)."""
    x = min(max(round(point[0]), 0), shape[1] - 1)
    y = min(max(round(point[1]), 0), shape[0] - 1)
    return x, y


def colour_at(lab: NDArray[np.float32], point: Point, radius: int) -> NDArray[np.float32]:
    """The median smoothed colour in a square of `radius` around `point`."""
    x, y = pixel(point, lab.shape)
    patch = lab[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1]
    return np.median(patch.reshape(-1, 3), axis=0).astype(np.float32)


def distance_to(
    lab: NDArray[np.float32], colours: Sequence[NDArray[np.float32]]
) -> NDArray[np.float32]:
    """Each pixel's colour distance to the nearest of `colours` (infinite without any)."""
    nearest = np.full(lab.shape[:2], np.inf, dtype=np.float32)
    for colour in colours:
        nearest = np.minimum(nearest, np.linalg.norm(lab - colour, axis=2))
    return nearest


def joined_to(mask: Mask, points: Sequence[Point]) -> Mask:
    """The parts of `mask` 4-connected to one of `points`."""
    _, parts = cv2.connectedComponents(mask.astype(np.uint8), connectivity=4)
    keep = {int(parts[y, x]) for x, y in (pixel(p, mask.shape) for p in points)}
    keep.discard(0)
    return np.isin(parts, sorted(keep)) & mask


def colour_region(
    image: PreparedImage, positives: Sequence[Point], negatives: Sequence[Point], radius: int
) -> Mask:
    """Pixels joined to a positive point whose colour is near a positive point's colour and
    nearer to it than to any negative point's: the seed of probable foreground."""
    ours = [colour_at(image.lab, p, radius) for p in positives]
    theirs = [colour_at(image.lab, p, radius) for p in negatives]
    texture = max(
        float(image.spread[y, x]) for x, y in (pixel(p, image.spread.shape) for p in positives)
    )
    tolerance = max(MIN_TOLERANCE, TEXTURE_TOLERANCE * texture)
    near = distance_to(image.lab, ours)
    return joined_to((near <= tolerance) & (near < distance_to(image.lab, theirs)), positives)


def initial_mask(image: PreparedImage, prompts: Prompts, radius: int) -> NDArray[np.uint8]:
    """GrabCut's starting labels from the prompts, in working pixels."""
    height, width = image.pixels.shape[:2]
    positives = points_of(prompts.positive, image)
    negatives = points_of(prompts.negative, image)
    boxes = prompts.of_kind("box").positive
    if boxes:
        mask = np.full((height, width), cv2.GC_BGD, dtype=np.uint8)
        (x0, y0), (x1, y1) = corners(boxes[-1], image)
        mask[max(0, y0) : max(0, y1), max(0, x0) : max(0, x1)] = cv2.GC_PR_FGD
    else:
        mask = np.full((height, width), cv2.GC_PR_BGD, dtype=np.uint8)
        mask[colour_region(image, positives, negatives, radius)] = cv2.GC_PR_FGD
    for point in positives:
        disc(mask, point, radius, cv2.GC_FGD)
    for point in negatives:
        disc(mask, point, radius, cv2.GC_BGD)
    return mask


def working(prompt: Prompt, image: PreparedImage) -> tuple[float, float]:
    """How many working pixels one pixel of the prompt's image is, across and down (the
    editor's `original_width` and `original_height` are the image's own, as a rule)."""
    width, height = image.pixels.shape[1], image.pixels.shape[0]
    sent = prompt.image_size or image.size
    return width / max(1, sent[0]), height / max(1, sent[1])


def points_of(prompts: Prompts, image: PreparedImage) -> list[Point]:
    """The points of the point prompts, in working pixels."""
    found = []
    for prompt in prompts.of_kind("point"):
        if prompt.point is not None:
            sx, sy = working(prompt, image)
            found.append((prompt.point[0] * sx, prompt.point[1] * sy))
    return found


def corners(box: Prompt, image: PreparedImage) -> tuple[tuple[int, int], tuple[int, int]]:
    """A box prompt's top-left and bottom-right corners, in working pixels (rotation ignored)."""
    x0, y0, x1, y1 = box.box or (0.0, 0.0, 0.0, 0.0)
    sx, sy = working(box, image)
    return (round(min(x0, x1) * sx), round(min(y0, y1) * sy)), (
        round(max(x0, x1) * sx),
        round(max(y0, y1) * sy),
    )


def grabcut(pixels: NDArray[np.uint8], mask: NDArray[np.uint8], iterations: int) -> Mask:
    """GrabCut from `mask`'s labels: True where it ends as (probable) foreground."""
    foreground = is_foreground(mask)
    if foreground.sum() < 10 or (~foreground).sum() < 10:  # no colour model to fit on a side
        return foreground
    background_model = np.zeros((1, 65), np.float64)
    foreground_model = np.zeros((1, 65), np.float64)
    no_rect = (0, 0, 0, 0)  # the mask says it all (GC_INIT_WITH_MASK)
    cv2.setRNGSeed(0)  # GrabCut's k-means draws from OpenCV's RNG: the same prompts, same mask
    cv2.grabCut(
        pixels, mask, no_rect, background_model, foreground_model, iterations, cv2.GC_INIT_WITH_MASK
    )
    return is_foreground(mask)


def is_foreground(mask: NDArray[np.uint8]) -> Mask:
    """Where GrabCut's labels say (probable) foreground."""
    return np.asarray((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD), np.bool_)


def segment(image: PreparedImage, prompts: Prompts, iterations: int = 5) -> Mask | None:
    """The object the prompts point at, as a mask of the original image's size (None when
    there is nothing to segment: no positive point and no box)."""
    positives = points_of(prompts.positive, image)
    if not positives and not prompts.of_kind("box").positive:
        return None
    height, width = image.pixels.shape[:2]
    radius = max(3, round(0.01 * max(width, height)))
    found = grabcut(image.pixels, initial_mask(image, prompts, radius), iterations)
    if positives:
        found = joined_to(found, positives)
    if image.scale < 1.0:
        full = cv2.resize(found.astype(np.uint8) * 255, image.size, interpolation=cv2.INTER_LINEAR)
        found = np.asarray(full > 127, np.bool_)
    return found


class InteractiveSegmentation(LabelStudioModel):
    """GrabCut from Label Studio's smart keypoints and boxes, answered as a brush mask."""

    model_version = "grabcut-1"
    memo_entries: ClassVar[int] = 8
    max_side: ClassVar[int] = 512
    """Images are segmented at most this many pixels wide and high (masks come back full size)."""
    iterations: ClassVar[int] = 5
    """GrabCut's rounds of fitting the colour models and cutting."""

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        prompts = context.prompts.of_kind("point", "box")
        label_config = context.label_config or context.project.label_config
        if not prompts or not label_config:  # an ordinary call: no suggestion
            return [None for _ in tasks]
        task = tasks[0]  # an interactive call holds one task
        target = target_of(label_config, prompts[-1].to_name)
        value = task.data.get(target.data_key)
        if not isinstance(value, str):
            raise ValueError(f"task {task.id} has no image URL in data[{target.data_key!r}]")
        image = context.memo.get(
            ("grabcut", value), lambda: self.prepare(context.local_path(value, task))
        )
        answers: list[Prediction | None] = [None for _ in tasks]
        mask = segment(image, prompts, self.iterations)
        if mask is not None and mask.any():
            build = ResultBuilder(target.config)
            build.brush(mask, prompts.label, from_name=target.from_name, to_name=target.to_name)
            answers[0] = build.prediction()
        return answers

    def prepare(self, path: Path) -> PreparedImage:
        """Decode, downscale and smooth an image: once per image, kept in `context.memo`."""
        return prepare(read_image(path), self.max_side)
