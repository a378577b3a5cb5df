"""Run Label Studio's own brush RLE (`label_studio_sdk.converter.brush`) in its venv.

The reference lives in the Label Studio venv of the end-to-end tests (`default_venv()`), not in
relaxml's, so it runs in a subprocess: JSON cases on stdin, JSON answers on stdout.

`python -m tests.support.rle_reference` rewrites the golden fixtures in tests/fixtures/rle/ from it.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from .labelstudio import default_venv

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "rle" / "golden.json"

_SCRIPT = r"""
import json, sys
import numpy as np
from label_studio_sdk.converter.brush import decode_rle, encode_rle, mask2rle
out = []
for case in json.load(sys.stdin):
    if case["op"] == "mask2rle":
        mask = np.array(case["pixels"], dtype=np.uint8).reshape(case["height"], case["width"])
        out.append([int(b) for b in mask2rle(mask)])
    elif case["op"] == "encode_rle":
        out.append([int(b) for b in encode_rle(np.array(case["values"], dtype=np.uint8))])
    else:
        out.append([int(v) for v in decode_rle(case["rle"])])
json.dump(out, sys.stdout)
"""


def reference_python() -> Path:
    """The Python of the Label Studio venv (it may not exist)."""
    return default_venv() / "bin" / "python"


def run_reference(cases: list[dict[str, Any]]) -> list[list[int]]:
    """Answer each case (`op`: mask2rle, encode_rle or decode_rle) with the reference."""
    completed = subprocess.run(
        [str(reference_python()), "-c", _SCRIPT],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    answers: list[list[int]] = json.loads(completed.stdout)
    return answers


def expand(runs: list[list[int]]) -> list[int]:
    """[[value, count], ...] → the flat list of values."""
    return [value for value, count in runs for _ in range(count)]


def golden_masks() -> list[dict[str, Any]]:
    """Small masks covering every chunk size the encoder writes, as pixel runs."""
    rng = random.Random(20240601)
    noise = [[rng.randrange(256), 1] for _ in range(7 * 9)]
    stripes = [[255 * (i % 2), 1 + i % 70] for i in range(60)]
    total = sum(count for _, count in stripes)
    stripes.append([0, 40 * 60 - total])
    return [
        {"name": "one-pixel", "width": 1, "height": 1, "runs": [[255, 1]]},
        {"name": "empty-8x8", "width": 8, "height": 8, "runs": [[0, 64]]},
        {"name": "full-5x3", "width": 5, "height": 3, "runs": [[255, 15]]},
        {"name": "noise-9x7", "width": 9, "height": 7, "runs": noise},
        {"name": "stripes-60x40", "width": 60, "height": 40, "runs": stripes},
        {
            "name": "long-runs-400x200",  # runs of 4 x 40000 values: split at 65536
            "width": 400,
            "height": 200,
            "runs": [[0, 40000], [255, 39999], [7, 1]],
        },
        {
            "name": "exact-chunk-128x256",  # 16384 pixels = 65536 values: one full chunk
            "width": 128,
            "height": 256,
            "runs": [[255, 16384], [0, 16384]],
        },
    ]


def golden_flat() -> list[dict[str, Any]]:
    """Flat RGBA value streams with run lengths at every boundary of the chunk sizes."""
    lengths = [1, 2, 8, 9, 16, 17, 256, 257, 65535, 65536, 65537, 131072, 131073, 3]
    return [
        {"name": "boundaries", "runs": [[(17 * i) % 256, n] for i, n in enumerate(lengths)]},
        {"name": "literals", "runs": [[v, 1] for v in range(256)]},
    ]


def write_golden() -> None:
    """Regenerate the golden fixtures with the reference encoder."""
    masks, flat = golden_masks(), golden_flat()
    cases = [
        {"op": "mask2rle", "width": m["width"], "height": m["height"], "pixels": expand(m["runs"])}
        for m in masks
    ] + [{"op": "encode_rle", "values": expand(f["runs"])} for f in flat]
    for case, rle in zip([*masks, *flat], run_reference(cases), strict=True):
        case["rle"] = rle
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    source = "label_studio_sdk.converter.brush mask2rle / encode_rle (label-studio 1.23.2)"
    document = {"source": source, "masks": masks, "flat": flat}
    GOLDEN.write_text(json.dumps(document, indent=1) + "\n")


if __name__ == "__main__":
    write_golden()
    sys.stdout.write(f"wrote {GOLDEN}\n")
