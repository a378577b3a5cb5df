"""Brush RLE: golden bytes from Label Studio's converter, round trips, both code paths, errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from relaxml.labels import rle
from relaxml.labels.rle import (
    RLEError,
    decode_rle,
    encode_rle,
    mask_to_rle,
    rle_length,
    rle_to_array,
    rle_to_mask,
)

from .support.rle_reference import GOLDEN, expand

GOLDEN_DATA = json.loads(GOLDEN.read_text())


def rows_of(case: dict) -> list[list[int]]:
    pixels = expand(case["runs"])
    width = case["width"]
    return [pixels[i : i + width] for i in range(0, len(pixels), width)]


@pytest.mark.parametrize("case", GOLDEN_DATA["masks"], ids=lambda c: c["name"])
def test_masks_encode_to_the_reference_bytes(case):
    rows = rows_of(case)
    assert mask_to_rle(rows) == case["rle"]
    assert mask_to_rle(np.array(rows, dtype=np.uint8)) == case["rle"]
    assert mask_to_rle(np.array(rows, dtype=np.int64)) == case["rle"]


@pytest.mark.parametrize("case", GOLDEN_DATA["masks"], ids=lambda c: c["name"])
def test_reference_bytes_decode_to_the_mask(case):
    rows = rows_of(case)
    assert rle_to_mask(case["rle"], case["width"], case["height"]) == rows
    array = rle_to_array(case["rle"], case["width"], case["height"])
    assert array.shape == (case["height"], case["width"], 4)
    assert (array == np.array(rows, dtype=np.uint8)[..., None]).all()
    assert rle_length(case["rle"]) == case["width"] * case["height"] * 4


@pytest.mark.parametrize("case", GOLDEN_DATA["flat"], ids=lambda c: c["name"])
def test_flat_values_encode_to_the_reference_bytes(case):
    values = expand(case["runs"])
    assert encode_rle(values) == case["rle"]
    assert encode_rle(np.array(values, dtype=np.uint8)) == case["rle"]
    assert decode_rle(case["rle"]) == values


def test_bool_masks_become_0_and_255():
    mask = [[True, False], [False, True]]
    expected = mask_to_rle([[255, 0], [0, 255]])
    assert mask_to_rle(mask) == expected
    assert mask_to_rle(np.array(mask)) == expected


def test_padding_always_adds_bits_like_the_reference():
    # header (53 bits) + one 14-bit chunk is 67 bits: 5 bits of padding to 72.
    assert len(encode_rle([9])) == 9
    # header + one 27-bit chunk is 80 bits, already whole bytes: the reference adds a zero byte.
    aligned = encode_rle([5] * 300)
    assert len(aligned) == 11
    assert aligned[-1] == 0
    # An empty stream is the 53-bit header (count 0, word size 8, counts 3/4/8/16 bits).
    assert encode_rle([]) == [0, 0, 0, 0, 0b00111001, 0b00011011, 0b11111000]
    assert decode_rle(encode_rle([])) == []


def _stream(fields: list[tuple[int, int]]) -> list[int]:
    """Hand-assemble a bit stream from (value, width) fields, zero-padded to bytes."""
    bits = "".join(format(value, f"0{width}b") for value, width in fields)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]


def test_decodes_literal_chunks_as_the_editor_writes_them():
    # Label Studio's editor (thi.ng rle-pack) writes runs of distinct values as one literal
    # chunk: flag 0, a count, then that many words.
    header = [(7, 32), (7, 5), (2, 4), (3, 4), (7, 4), (15, 4)]
    literal = [(0, 1), (1, 2), (3, 4), (10, 8), (20, 8), (30, 8), (40, 8)]
    run = [(1, 1), (0, 2), (2, 3), (99, 8)]
    assert decode_rle(_stream(header + literal + run)) == [10, 20, 30, 40, 99, 99, 99]


def test_decodes_other_word_and_count_sizes():
    header = [(3, 32), (3, 5), (0, 4), (0, 4), (0, 4), (0, 4)]  # 4-bit words, 1-bit counts
    chunks = [(1, 1), (0, 2), (1, 1), (5, 4), (0, 1), (0, 2), (0, 1), (9, 4)]
    assert decode_rle(_stream(header + chunks)) == [5, 5, 9]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([1, 2], "ends in the middle"),
        (encode_rle([1, 2, 3])[:-2], "ends in the middle"),
        ([300, 1], "integers from 0 to 255"),
        ("abc", "integers from 0 to 255"),
    ],
)
def test_invalid_streams_raise_rle_error(bad, message):
    with pytest.raises(RLEError, match=message):
        decode_rle(bad)


def test_header_count_must_match_the_chunks():
    header = [(2, 32), (7, 5), (2, 4), (3, 4), (7, 4), (15, 4)]
    overflow = [(1, 1), (0, 2), (2, 3), (5, 8)]  # 3 values for a header of 2
    with pytest.raises(RLEError, match="holds 3 values but its header says 2"):
        decode_rle(_stream(header + overflow))


def test_a_huge_header_is_refused_before_decoding():
    header = [(2**31, 32), (7, 5), (2, 4), (3, 4), (7, 4), (15, 4)]
    huge = _stream(header + [(1, 1), (3, 2), (65535, 16), (255, 8)] * 4)
    with pytest.raises(RLEError, match="not 10x10x4"):
        rle_to_mask(huge, 10, 10)
    with pytest.raises(RLEError, match="not 10x10x4"):
        rle_to_array(huge, 10, 10)


def test_shape_must_match():
    data = mask_to_rle([[1, 2, 3]])
    with pytest.raises(RLEError, match=r"not 2x2x4"):
        rle_to_mask(data, 2, 2)
    with pytest.raises(RLEError, match=r"not 2x2x4"):
        rle_to_array(data, 2, 2)


@pytest.mark.parametrize(
    "values", [[256], [-1], [1.5], ["a"], np.array([1.0]), np.array([256]), np.array([-3])]
)
def test_values_outside_a_byte_are_refused(values):
    with pytest.raises(RLEError, match="0 to 255"):
        encode_rle(values)


def test_masks_must_be_2d_and_rectangular():
    with pytest.raises(RLEError, match="2-D"):
        mask_to_rle(np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(RLEError, match="same length"):
        mask_to_rle([[1, 2], [3]])


def test_numpy_and_pure_paths_agree_on_a_large_mask():
    yy, xx = np.mgrid[0:300, 0:500]
    mask = ((((xx - 250) / 200) ** 2 + ((yy - 150) / 90) ** 2) < 1).astype(np.uint8) * 255
    assert mask_to_rle(mask) == mask_to_rle(mask.tolist())
    assert (rle_to_array(mask_to_rle(mask), 500, 300)[..., 3] == mask).all()


NO_NUMPY = """
import sys
sys.modules["numpy"] = None  # makes `import numpy` fail
import relaxml
from relaxml.labels.results import ResultBuilder
from relaxml.labels.rle import mask_to_rle, rle_to_array, rle_to_mask

data = mask_to_rle([[0, 255], [255, 255]])
assert rle_to_mask(data, 2, 2) == [[0, 255], [255, 255]]
config = '<View><Image name="i" value="$i"/><Brush name="b" toName="i"/></View>'
ResultBuilder(config).brush([[1, 0]])
try:
    rle_to_array(data, 2, 2)
except ImportError as error:
    assert "relaxml[numpy]" in str(error)
else:
    raise SystemExit("rle_to_array worked without numpy")
"""


def test_imports_and_works_without_numpy():
    subprocess.run([sys.executable, "-c", NO_NUMPY], check=True)


# --- properties ---------------------------------------------------------------------------

byte_runs = st.lists(
    st.tuples(st.integers(0, 255), st.integers(1, 70_000)), min_size=0, max_size=12
)


@settings(max_examples=60, deadline=None)
@given(byte_runs)
def test_round_trip_of_flat_values(runs):
    values = [v for v, n in runs for _ in range(n)]
    encoded = encode_rle(values)
    assert decode_rle(encoded) == values
    assert encode_rle(np.array(values, dtype=np.uint8)) == encoded
    assert all(0 <= b <= 255 for b in encoded)


masks = st.integers(1, 12).flatmap(
    lambda width: st.lists(
        st.lists(st.sampled_from([0, 0, 0, 255, 255, 1, 128]), min_size=width, max_size=width),
        min_size=1,
        max_size=12,
    )
)


@settings(max_examples=100, deadline=None)
@given(masks)
def test_round_trip_of_masks(mask):
    height, width = len(mask), len(mask[0])
    encoded = mask_to_rle(mask)
    assert encoded == mask_to_rle(np.array(mask, dtype=np.uint8))
    assert rle_to_mask(encoded, width, height) == mask
    assert decode_rle(encoded) == [v for row in mask for v in row for _ in range(4)]


def test_module_exports():
    assert set(rle.__all__) <= set(dir(rle))
