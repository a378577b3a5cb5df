"""Synthetic squirrel scenes, drawn with fixed seeds: the data of the tests and measurements.

A scene is a green/olive textured lawn with tree trunks of a dull grey-brown bark, and one to
three squirrels: a textured ellipse body, a head and a thick curled tail, either red-brown
(saturated) or grey. The trunks share the squirrels' hue, so a "brown blob" prior is fooled by
them and misses grey squirrels; a colour model learnt from annotated boxes is not.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

WIDTH, HEIGHT = 320, 240
BROWN = (150, 85, 35)  # RGB: a red squirrel's coat
GREY = (150, 146, 140)
BARK = (112, 88, 64)
GRASS = ((70, 125, 45), (105, 120, 55), (50, 90, 40))

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


@dataclass(frozen=True)
class Scene:
    """An RGB image, its squirrels' true boxes with their kind ("brown" or "grey"), and the
    boxes of its tree trunks."""

    image: NDArray[np.uint8]
    boxes: tuple[Box, ...]
    kinds: tuple[str, ...]
    trunks: tuple[Box, ...]

    def png(self) -> bytes:
        """The image as PNG bytes."""
        out = io.BytesIO()
        Image.fromarray(self.image).save(out, format="PNG")
        return out.getvalue()


def lawn(rng: np.random.Generator) -> NDArray[np.float64]:
    """A blotchy green/olive background with fine noise."""
    weights = rng.random((len(GRASS), HEIGHT // 16, WIDTH // 16))
    smooth = np.stack(
        [cv2.resize(w, (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC) for w in weights]
    )
    smooth = np.exp(4 * smooth)
    smooth /= smooth.sum(axis=0, keepdims=True)
    image = np.einsum("khw,kc->hwc", smooth, np.array(GRASS, dtype=np.float64))
    return image + rng.normal(0, 10, image.shape)


def add_trunk(image: NDArray[np.float64], rng: np.random.Generator) -> Box:
    """A vertical trunk of striped grey-brown bark, in place; its box."""
    width = int(rng.integers(16, 30))
    x0 = int(rng.integers(0, WIDTH - width))
    top = int(rng.integers(0, HEIGHT // 3))
    stripes = rng.normal(0, 14, (1, width, 1))
    bark = np.array(BARK, dtype=np.float64) + stripes + rng.normal(0, 8, (HEIGHT - top, width, 3))
    image[top:, x0 : x0 + width] = bark
    return (float(x0), float(top), float(x0 + width), float(HEIGHT))


def squirrel_mask(rng: np.random.Generator) -> tuple[NDArray[np.uint8], Box]:
    """The mask of one squirrel somewhere in the image, and its bounding box."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    a, b = int(rng.integers(14, 24)), int(rng.integers(9, 14))
    cx, cy = int(rng.integers(45, WIDTH - 45)), int(rng.integers(45, HEIGHT - 45))
    angle = float(rng.uniform(-30, 30))
    side = 1 if rng.random() < 0.5 else -1
    cv2.ellipse(mask, (cx, cy), (a, b), angle, 0, 360, 1, -1)
    head = (cx - side * a, cy - b)
    cv2.circle(mask, head, int(b * 0.8), 1, -1)
    tail_centre = (cx + side * (a + 4), cy - b)
    start, end = (90, 300) if side > 0 else (-120, 90)
    cv2.ellipse(mask, tail_centre, (int(a * 0.6), int(b * 1.6)), 0, start, end, 1, 7)
    ys, xs = np.nonzero(mask)
    return mask, (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def draw_scene(seed: int) -> Scene:
    """The scene of `seed`: always the same image and boxes for the same seed."""
    rng = np.random.default_rng(seed)
    image = lawn(rng)
    trunks = tuple(add_trunk(image, rng) for _ in range(int(rng.integers(1, 3))))
    taken = np.zeros((HEIGHT, WIDTH), bool)
    boxes: list[Box] = []
    kinds: list[str] = []
    for _ in range(int(rng.integers(1, 4))):
        mask, box = squirrel_mask(rng)
        grown = cv2.dilate(mask, np.ones((9, 9), np.uint8)).astype(bool)
        if (grown & taken).any():
            continue
        taken |= grown
        kind = "brown" if rng.random() < 0.55 else "grey"
        colour = np.array(BROWN if kind == "brown" else GREY, dtype=np.float64)
        coat = colour * rng.uniform(0.9, 1.1) + rng.normal(0, 12, image.shape)
        image[mask.astype(bool)] = coat[mask.astype(bool)]
        boxes.append(box)
        kinds.append(kind)
    pixels = np.clip(cv2.GaussianBlur(image, (3, 3), 0.6), 0, 255).astype(np.uint8)
    return Scene(pixels, tuple(boxes), tuple(kinds), trunks)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two xyxy boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union
