"""A model that really reads each task's image: it tells the PNGs apart by their colour."""

from __future__ import annotations

import struct
import zlib

from relaxml import Context, LabelStudioModel, Prediction, Task


def first_pixel(data: bytes) -> tuple[int, int, int]:
    """The RGB of the first pixel of an 8-bit RGB PNG (filter 0), read with the stdlib."""
    idat = b""
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        if kind == b"IDAT":
            idat += data[offset + 8 : offset + 8 + length]
        offset += 12 + length
    row = zlib.decompress(idat)
    return row[1], row[2], row[3]


class ColourOfImage(LabelStudioModel):
    model_version = "colour-1"

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        out = []
        for task in tasks:
            path = context.local_path(task.data["image"], task)
            red, green, _ = first_pixel(path.read_bytes())
            label = "cat" if red > green else "dog"
            region = {
                "from_name": "kind",
                "to_name": "image",
                "type": "choices",
                "value": {"choices": [label]},
            }
            out.append(Prediction(result=[region], score=1.0))
        return out
