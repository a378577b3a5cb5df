"""The scene of the browser test of a smart keypoint (`tests/e2e/test_interactive_mask_e2e.py`).

`scene()` draws the test image: on white, a pure red square joined to a darker red one, so a
positive click in the red square gets both and a negative click in the darker one takes it away.
`encode_png` writes it with the standard library.
"""

from __future__ import annotations

import struct
import zlib

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
