"""Brush RLE speed: relaxml.labels.rle against Label Studio's own converter, on 4K masks.

    python bench/bench_rle.py            # 3840x2160 masks, best of 5
    python bench/bench_rle.py --quick    # 640x360 masks, best of 2, nothing written

Both encoders get the same uint8 NumPy mask, already in memory, and must produce the same
bytes (checked). relaxml runs in this process; the reference
(`label_studio_sdk.converter.brush.mask2rle` / `decode_rle`) runs in the Label Studio venv of
the end-to-end tests (`$RELAXML_LABEL_STUDIO_VENV`, else the XDG cache), in a subprocess that
times only the call itself. The ratio is reference time / relaxml time (above 1: relaxml is
faster). Results go to bench/results/rle.json and bench/results/rle.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent))

from relaxml.labels.rle import mask_to_rle, rle_to_array  # noqa: E402

RESULTS = BENCH_DIR / "results"

REFERENCE = r"""
import json, sys, time
import numpy as np
from label_studio_sdk.converter.brush import decode_rle, mask2rle
mask = np.load(sys.argv[1])
repeats = int(sys.argv[2])
encode, decode = [], []
for _ in range(repeats):
    start = time.perf_counter(); rle = mask2rle(mask); encode.append(time.perf_counter() - start)
for _ in range(repeats):
    start = time.perf_counter(); flat = decode_rle(rle); decode.append(time.perf_counter() - start)
assert (flat.reshape(mask.shape + (4,))[..., 3] == mask).all()
import platform
env = f"Python {platform.python_version()}, NumPy {np.__version__}"
answer = {"encode": encode, "decode": decode, "rle": [int(b) for b in rle], "env": env}
json.dump(answer, sys.stdout)
"""


def reference_python() -> Path:
    configured = os.environ.get("RELAXML_LABEL_STUDIO_VENV")
    if configured:
        venv = Path(configured).expanduser()
    else:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        venv = cache / "relaxml-tests" / "label-studio-1.23.2"
    return venv / "bin" / "python"


def masks(width: int, height: int) -> dict[str, np.ndarray]:
    """Masks as models produce them: a few large objects, and many small ones."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    objects = np.zeros((height, width), dtype=bool)
    for cx, cy, rx, ry in ((0.3, 0.4, 0.2, 0.25), (0.7, 0.6, 0.12, 0.3), (0.5, 0.85, 0.4, 0.08)):
        objects |= ((xx - cx * width) / (rx * width)) ** 2 + (
            (yy - cy * height) / (ry * height)
        ) ** 2 < 1
    rng = np.random.default_rng(0)
    crowd = np.zeros((height, width), dtype=bool)
    for _ in range(400):
        x, y = rng.integers(0, width), rng.integers(0, height)
        r = rng.integers(4, max(5, width // 80))
        crowd[max(0, y - r) : y + r, max(0, x - r) : x + r] = True
    return {
        "3 large objects": objects.astype(np.uint8) * 255,
        "400 small objects": crowd.astype(np.uint8) * 255,
    }


def best(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = call()
        times.append(time.perf_counter() - start)
    return min(times), value


def run_reference(mask: np.ndarray, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mask.npy"
        np.save(path, mask)
        completed = subprocess.run(
            [str(reference_python()), "-c", REFERENCE, str(path), str(repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
    answer: dict[str, Any] = json.loads(completed.stdout)
    return answer


def measure(name: str, mask: np.ndarray, repeats: int) -> dict[str, Any]:
    height, width = mask.shape
    encode_s, rle = best(lambda: mask_to_rle(mask), repeats)
    decode_s, array = best(lambda: rle_to_array(rle, width, height), repeats)
    assert (array[..., 3] == mask).all()
    listed = mask.tolist()
    pure_s, pure = best(lambda: mask_to_rle(listed), 1)
    assert pure == rle
    ref = run_reference(mask, repeats)
    if ref["rle"] != rle:
        raise SystemExit(f"{name}: relaxml and the reference encoded different bytes")
    ref_encode, ref_decode = min(ref["encode"]), min(ref["decode"])
    return {
        "reference_env": ref["env"],
        "mask": name,
        "width": width,
        "height": height,
        "rle_bytes": len(rle),
        "identical_bytes": True,
        "relaxml_encode_s": encode_s,
        "relaxml_encode_pure_python_s": pure_s,
        "reference_encode_s": ref_encode,
        "encode_ratio": ref_encode / encode_s,
        "relaxml_decode_s": decode_s,
        "reference_decode_s": ref_decode,
        "decode_ratio": ref_decode / decode_s,
    }


def markdown(document: dict[str, Any]) -> str:
    lines = [
        "# Brush RLE: relaxml.labels.rle vs label_studio_sdk.converter.brush",
        "",
        f"{document['when']}, {document['machine']}; the reference ran with "
        f"{document['rows'][0]['reference_env']}. Best of {document['repeats']}. "
        "Ratio = reference time / relaxml time. Both produce identical bytes (checked).",
        "",
        "| mask | size | RLE bytes | relaxml encode | reference encode | ratio | "
        "relaxml decode | reference decode | ratio | relaxml encode, nested lists |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["rows"]:
        ms = {key: f"{row[key] * 1000:.1f} ms" for key in row if key.endswith("_s")}
        cells = [
            row["mask"],
            f"{row['width']}x{row['height']}",
            str(row["rle_bytes"]),
            ms["relaxml_encode_s"],
            ms["reference_encode_s"],
            f"**{row['encode_ratio']:.0f}x**",
            ms["relaxml_decode_s"],
            ms["reference_decode_s"],
            f"**{row['decode_ratio']:.1f}x**",
            ms["relaxml_encode_pure_python_s"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "relaxml encodes NumPy masks with a vectorised path (runs found on the pixel grid, "
        "chunks packed as integers) and nested lists in pure Python; decoding parses the "
        "chunks in Python and expands them with NumPy.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="640x360 masks, best of 2; writes no results"
    )
    args = parser.parse_args()
    if not reference_python().exists():
        raise SystemExit(f"the reference needs the Label Studio venv: {reference_python()}")
    width, height, repeats = (640, 360, 2) if args.quick else (3840, 2160, 5)
    rows = [measure(name, mask, repeats) for name, mask in masks(width, height).items()]
    document = {
        "benchmark": "rle",
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, relaxml on Python "
        f"{platform.python_version()}, NumPy {np.__version__}",
        "repeats": repeats,
        "rows": rows,
    }
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "rle.json").write_text(json.dumps(document, indent=2) + "\n")
        (RESULTS / "rle.md").write_text(markdown(document))
    sys.stdout.write(markdown(document))


if __name__ == "__main__":
    main()
