"""Byte compatibility with Label Studio's own converter, run live from the Label Studio venv.

Skipped when that venv is missing, unless `RELAXML_E2E=require`. The golden fixtures in
tests/fixtures/rle/ check the same compatibility without the venv (see tests/test_rle.py).
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pytest

from relaxml.labels.rle import decode_rle, encode_rle, mask_to_rle

from .support.rle_reference import (
    GOLDEN,
    golden_flat,
    golden_masks,
    reference_python,
    run_reference,
)


@pytest.fixture(scope="module")
def reference():
    if not reference_python().exists():
        reason = f"the Label Studio venv is missing ({reference_python()})"
        if os.environ.get("RELAXML_E2E", "").strip().lower() == "require":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return run_reference


def sample_masks() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:180, 0:320]
    ellipse = ((((xx - 150) / 90) ** 2 + ((yy - 80) / 50) ** 2) < 1).astype(np.uint8) * 255
    masks = [
        ellipse,
        (rng.random((40, 50)) > 0.7).astype(np.uint8) * 255,
        rng.integers(0, 256, (23, 31), dtype=np.uint8),
        np.zeros((1, 1), dtype=np.uint8),
        np.full((300, 300), 255, dtype=np.uint8),
    ]
    for _ in range(20):
        height, width = (int(v) for v in rng.integers(1, 60, 2))
        levels = rng.choice([0, 0, 255, 1, 77], size=(height, width))
        masks.append(levels.astype(np.uint8))
    return masks


def test_masks_match_mask2rle(reference):
    masks = sample_masks()
    cases = [
        {"op": "mask2rle", "width": m.shape[1], "height": m.shape[0], "pixels": m.ravel().tolist()}
        for m in masks
    ]
    for mask, expected in zip(masks, reference(cases), strict=True):
        assert mask_to_rle(mask) == expected
        assert mask_to_rle(mask.tolist()) == expected


def test_flat_values_match_encode_rle(reference):
    rnd = random.Random(3)
    streams = []
    for _ in range(15):
        runs = [
            (rnd.randrange(256), rnd.choice([1, 2, 9, 17, 257, 65536, 65537])) for _ in range(6)
        ]
        streams.append([v for v, n in runs for _ in range(n)])
    expected = reference([{"op": "encode_rle", "values": s} for s in streams])
    for values, rle in zip(streams, expected, strict=True):
        assert encode_rle(values) == rle
        assert encode_rle(np.array(values, dtype=np.uint8)) == rle


def test_reference_decodes_what_we_encode(reference):
    masks = sample_masks()[:6]
    encoded = [mask_to_rle(m) for m in masks]
    decoded = reference([{"op": "decode_rle", "rle": rle} for rle in encoded])
    for mask, values, rle in zip(masks, decoded, encoded, strict=True):
        assert values == np.repeat(mask.ravel(), 4).tolist()
        assert decode_rle(rle) == values


def test_golden_fixtures_are_current(reference):
    stored = json.loads(GOLDEN.read_text())
    masks, flat = golden_masks(), golden_flat()
    assert [m["runs"] for m in stored["masks"]] == [m["runs"] for m in masks]
    cases = [
        {
            "op": "mask2rle",
            "width": m["width"],
            "height": m["height"],
            "pixels": [v for v, n in m["runs"] for _ in range(n)],
        }
        for m in masks
    ] + [{"op": "encode_rle", "values": [v for v, n in f["runs"] for _ in range(n)]} for f in flat]
    expected = [c["rle"] for c in [*stored["masks"], *stored["flat"]]]
    assert reference(cases) == expected
