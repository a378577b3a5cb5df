"""A small interactive model for end-to-end tests: a flood fill from the annotator's points.

`FloodFill` answers an interactive call with one brush region: the pixels connected to each
positive point whose colour is within `POSITIVE_TOLERANCE` of the clicked pixel's, minus the
pixels connected to each negative point within `NEGATIVE_TOLERANCE`. The image (an 8-bit RGB
PNG, decoded with the standard library) is kept in `context.memo`. An ordinary call gets no
prediction.

`scene()` draws the test image: on white, a pure red square joined to a darker red one.
"""

from __future__ import annotations

import struct
import zlib
from collections import deque

from relaxml import Context, LabelStudioModel, Prediction, ResultBuilder, Task

POSITIVE_TOLERANCE = 40  # per channel
NEGATIVE_TOLERANCE = 10

WIDTH, HEIGHT = 320, 240
WHITE, RED, DARK_RED = (255, 255, 255), (255, 0, 0), (230, 0, 0)
RED_BOX = (40, 60, 160, 180)  # x0, y0, x1, y1 (exclusive): 120x120 pixels
DARK_BOX = (160, 60, 280, 180)  # joined to the red square on its right

Pixels = list[list[tuple[int, int, int]]]


def scene() -> Pixels:
    """The test image, row by row."""

    def colour(x: int, y: int) -> tuple[int, int, int]:
        for (x0, y0, x1, y1), rgb in ((RED_BOX, RED), (DARK_BOX, DARK_RED)):
            if x0 <= x < x1 and y0 <= y < y1:
                return rgb
        return WHITE

    return [[colour(x, y) for x in range(WIDTH)] for y in range(HEIGHT)]


def encode_png(pixels: Pixels) -> bytes:
    """An 8-bit RGB PNG of `pixels` (filter 0 on every row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + bytes(v for rgb in row for v in rgb) for row in pixels)
    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def decode_png(data: bytes) -> Pixels:
    """The pixels of an 8-bit RGB, non-interlaced PNG whose rows all use filter 0."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG")
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if (depth, colour_type, interlace) != (8, 2, 0):
                raise ValueError("only 8-bit RGB PNGs without interlacing are read")
        elif kind == b"IDAT":
            idat += body
        offset += 12 + length
    raw, stride = zlib.decompress(idat), 1 + 3 * width
    pixels = []
    for y in range(height):
        row = raw[y * stride : (y + 1) * stride]
        if row[0] != 0:
            raise ValueError(f"row {y} uses PNG filter {row[0]}; only filter 0 is read")
        pixels.append([(row[i], row[i + 1], row[i + 2]) for i in range(1, stride, 3)])
    return pixels


def flood(pixels: Pixels, x: int, y: int, tolerance: int) -> set[tuple[int, int]]:
    """The pixels 4-connected to (x, y) whose colour is within `tolerance` of its colour."""
    height, width = len(pixels), len(pixels[0])
    x, y = min(max(x, 0), width - 1), min(max(y, 0), height - 1)
    seed = pixels[y][x]
    seen, todo = {(x, y)}, deque([(x, y)])
    while todo:
        px, py = todo.popleft()
        for nx, ny in ((px + 1, py), (px - 1, py), (px, py + 1), (px, py - 1)):
            if 0 <= nx < width and 0 <= ny < height and (nx, ny) not in seen:
                colour = pixels[ny][nx]
                if max(abs(colour[c] - seed[c]) for c in range(3)) <= tolerance:
                    seen.add((nx, ny))
                    todo.append((nx, ny))
    return seen


class FloodFill(LabelStudioModel):
    model_version = "flood-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction | None]:
        prompts = context.prompts.of_kind("point")
        if not context.is_interactive or not prompts.positive:
            return [None for _ in tasks]
        task = tasks[0]
        image = task.data["image"]
        pixels = context.memo.get(
            ("pixels", image), lambda: decode_png(context.local_path(image, task).read_bytes())
        )
        region: set[tuple[int, int]] = set()
        for prompt in prompts.positive:
            x, y = prompt.point or (0, 0)
            region |= flood(pixels, round(x), round(y), POSITIVE_TOLERANCE)
        for prompt in prompts.negative:
            x, y = prompt.point or (0, 0)
            region -= flood(pixels, round(x), round(y), NEGATIVE_TOLERANCE)
        mask = [[(x, y) in region for x in range(len(row))] for y, row in enumerate(pixels)]
        build = ResultBuilder(context.label_config or "")
        build.brush(mask, context.prompts.label, score=0.9)
        return [build.prediction(score=0.9)]
