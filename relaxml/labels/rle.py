"""Label Studio's brush RLE: encode and decode, byte for byte what Label Studio produces.

A brush mask travels as `{"format": "rle", "rle": [bytes...]}`. The bytes are a bit stream
(most significant bit first) over the image's flattened RGBA pixels, row by row:

- a header: the number of values (32 bits), the word size minus one (5 bits, 7 for bytes) and
  four run-length field sizes minus one (4 bits each; 3, 4, 8 and 16 bits);
- then chunks: a flag bit (1 = one value repeated, 0 = literal values), a 2-bit index choosing
  the size of the count field, the count minus one, then the value(s) in word-size bits;
- zero bits up to a byte boundary (Label Studio's encoder always adds 1 to 8 of them).

`encode_rle` writes exactly what `label_studio_sdk.converter.brush.encode_rle` writes (one chunk
per run, the smallest count field that fits, runs longer than 65536 split), so masks round-trip
through Label Studio's own converter unchanged. `decode_rle` reads any valid stream, including
the literal chunks Label Studio's editor writes.

The editor draws a mask from its alpha channel, so `mask_to_rle` stores the mask value in all
four channels, as `label_studio_sdk.converter.brush.mask2rle` does: use 255 for the region.

NumPy is optional (`pip install relaxml[numpy]`): with it, NumPy arrays are encoded by a
vectorised path that is much faster on large masks; without it, nested lists work everywhere.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from itertools import groupby, repeat
from typing import Any, TypeGuard

__all__ = [
    "decode_rle",
    "encode_rle",
    "mask_to_rle",
    "rle_length",
    "rle_to_array",
    "rle_to_mask",
]

_WORD = 8
_SIZES = (3, 4, 8, 16)
_HEADER = (32, 5, 4, 4, 4, 4)
_CHUNK = 1 << 16  # the most values one 16-bit count field can hold
_MAX_VALUES = (1 << 32) - 1


class RLEError(ValueError):
    """Bytes that are not a valid brush RLE stream, or values that cannot be encoded."""


def _numpy() -> Any:
    """The numpy module, or None when it is not installed."""
    try:
        import numpy
    except ImportError:  # pragma: no cover - numpy is in the dev extra
        return None
    return numpy


def _is_array(obj: object) -> TypeGuard[Any]:
    return type(obj).__module__ == "numpy" and hasattr(obj, "dtype")


# --- encoding -------------------------------------------------------------------------------


def _token(value: int, length: int, big: bool) -> tuple[int, int]:
    """The (code, bit count) of one chunk, as the reference encoder chooses it."""
    if big:
        return (0b111 << 24) | ((length - 1) << 8) | value, 27
    if length == 1:
        return value, 14
    if length <= 8:
        return (0b100 << 11) | ((length - 1) << 8) | value, 14
    if length <= 16:
        return (0b101 << 12) | ((length - 1) << 8) | value, 15
    return (0b110 << 16) | ((length - 1) << 8) | value, 19


def _header(count: int) -> int:
    if count > _MAX_VALUES:
        raise RLEError(f"cannot encode {count} values: the format holds at most {_MAX_VALUES}")
    fields = (count, _WORD - 1, *(size - 1 for size in _SIZES))
    code = 0
    for field, width in zip(fields, _HEADER, strict=True):
        code = (code << width) | field
    return code


def _finish(body: int, body_bits: int, count: int) -> list[int]:
    """Header + body + 1..8 zero bits, as a list of byte values."""
    total = sum(_HEADER) + body_bits
    pad = 8 - total % 8
    stream = (((_header(count) << body_bits) | body) << pad).to_bytes((total + pad) // 8, "big")
    return list(stream)


def _encode_runs(runs: Iterable[tuple[int, int]]) -> list[int]:
    """Encode (value, run length) pairs with plain Python integers."""
    parts: list[str] = []
    count = 0
    for value, length in runs:
        count += length
        big = length > 256
        while length > _CHUNK:
            parts.append(format(_token(value, _CHUNK, True)[0], "027b"))
            length -= _CHUNK
        code, bits = _token(value, length, big)
        parts.append(format(code, f"0{bits}b"))
    text = "".join(parts)
    return _finish(int(text, 2) if text else 0, len(text), count)


def _check_value(value: Any) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        number = -1
    if not 0 <= number <= 255:
        raise RLEError(f"RLE values must be integers from 0 to 255, got {value!r}")
    return number


def _runs(values: Iterable[int], repeat_each: int = 1) -> Iterable[tuple[int, int]]:
    for value, group in groupby(values):
        yield _check_value(value), sum(1 for _ in group) * repeat_each


def encode_rle(values: Iterable[int] | Any) -> list[int]:
    """Encode a flat sequence of RGBA values (0..255) into Label Studio's brush RLE bytes.

    `values` is a sequence of ints or a NumPy integer array (any shape, flattened in C order).
    """
    if _is_array(values):
        return _encode_array(values.reshape(-1), 1)
    return _encode_runs(_runs(values))


def mask_to_rle(mask: Sequence[Sequence[int]] | Any) -> list[int]:
    """Encode a 2-D mask (height rows of width values) as brush RLE, the value in all 4 channels.

    Values are alpha levels 0..255 (the editor shows nonzero pixels; use 255 for the region);
    booleans become 0 and 255. Same bytes as `label_studio_sdk`'s `mask2rle`.
    """
    if _is_array(mask):
        if mask.ndim != 2:
            raise RLEError(f"a mask must be 2-D (height, width), got shape {mask.shape}")
        if mask.dtype == bool:
            mask = mask.astype("uint8") * 255
        return _encode_array(mask.reshape(-1), 4)
    rows = [list(row) for row in mask]
    if rows and len({len(row) for row in rows}) != 1:
        raise RLEError("a mask's rows must all have the same length")
    pixels = (255 if v is True else v for row in rows for v in row)
    return _encode_runs(_runs(pixels, 4))


def _encode_array(flat: Any, repeat_each: int) -> list[int]:
    """Vectorised encoding of a flat integer array, each value repeated `repeat_each` times."""
    np = _numpy()
    if flat.dtype.kind not in "biu":
        raise RLEError(f"RLE values must be integers from 0 to 255, got dtype {flat.dtype}")
    if flat.size and (int(flat.min()) < 0 or int(flat.max()) > 255):
        raise RLEError("RLE values must be integers from 0 to 255")
    count = flat.size * repeat_each
    if flat.size == 0:
        return _finish(0, 0, 0)
    starts = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate(([0], starts, [flat.size]))
    lengths = np.diff(edges).astype(np.int64) * repeat_each
    values = flat[edges[:-1]].astype(np.int64)
    big = lengths > 256
    pieces = (lengths - 1) // _CHUNK + 1  # chunks per run: only runs over 65536 split
    if int(pieces.max()) > 1:
        values, big = np.repeat(values, pieces), np.repeat(big, pieces)
        last = np.cumsum(pieces) - 1
        lengths_split = np.full(int(pieces.sum()), _CHUNK, dtype=np.int64)
        lengths_split[last] = lengths - (pieces - 1) * _CHUNK
        lengths = lengths_split
    codes = np.where(lengths == 1, values, 0)
    bits = np.full(lengths.shape, 14, dtype=np.int64)
    for low, high, prefix, width, size in (
        (2, 8, 0b100, 14, 3),
        (9, 16, 0b101, 15, 4),
        (17, 256, 0b110, 19, 8),
    ):
        sel = (lengths >= low) & (lengths <= high) & ~big
        codes = np.where(sel, (prefix << (size + 8)) | ((lengths - 1) << 8) | values, codes)
        bits[sel] = width
    codes = np.where(big, (0b111 << 24) | ((lengths - 1) << 8) | values, codes)
    bits[big] = 27
    return _pack(np, codes, bits, count)


def _pack(np: Any, codes: Any, bits: Any, count: int) -> list[int]:
    """Concatenate variable-width codes after the header into bytes, with numpy.

    Each code (at most 27 bits) lands in at most two 32-bit words; the pieces never overlap, so
    summing them per word (exactly, in float64) is the same as OR-ing them.
    """
    head = sum(_HEADER)
    offsets = np.cumsum(bits) - bits + head
    total = head + int(bits.sum())
    pad = 8 - total % 8
    words = (total + pad + 31) // 32
    word = offsets // 32
    shift = 32 - (offsets % 32) - bits  # where the code's last bit lands in its word
    first = np.where(shift >= 0, codes << np.maximum(shift, 0), codes >> np.maximum(-shift, 0))
    spill = shift < 0
    second = (codes[spill] << (32 + shift[spill])) & 0xFFFFFFFF
    sums = np.bincount(word, weights=first.astype(np.float64), minlength=words)
    sums += np.bincount(word[spill] + 1, weights=second.astype(np.float64), minlength=words)
    out = sums.astype(np.uint64).astype(">u4").tobytes()
    header = (_header(count) << (64 - head)).to_bytes(8, "big")
    merged = bytes(a | b for a, b in zip(header, out[:8], strict=True)) + out[8:]
    return list(merged[: (total + pad) // 8])


# --- decoding -------------------------------------------------------------------------------


class _Bits:
    """Reads big-endian bit fields from bytes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # in bits
        self.end = len(data) * 8

    def read(self, width: int) -> int:
        if self.pos + width > self.end:
            raise RLEError("the RLE stream ends in the middle of a chunk")
        start, self.pos = self.pos, self.pos + width
        first, last = start >> 3, (self.pos + 7) >> 3
        chunk = int.from_bytes(self.data[first:last], "big")
        return (chunk >> ((last << 3) - self.pos)) & ((1 << width) - 1)


def _as_bytes(rle: Sequence[int] | bytes) -> bytes:
    if isinstance(rle, (bytes, bytearray)):
        return bytes(rle)
    try:
        return bytes(rle)
    except (TypeError, ValueError):
        raise RLEError("an RLE must be a list of integers from 0 to 255") from None


def rle_length(rle: Sequence[int] | bytes) -> int:
    """The number of values (4 per pixel) an RLE stream declares in its header."""
    return _Bits(_as_bytes(rle)).read(32)


def _chunks(rle: Sequence[int] | bytes) -> tuple[int, list[int], list[int]]:
    """Parse a stream into (count, values, repeats): value i appears repeats[i] times."""
    bits = _Bits(_as_bytes(rle))
    count = bits.read(32)
    word = bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    values: list[int] = []
    repeats: list[int] = []
    done = 0
    while done < count:
        is_run = bits.read(1)
        length = 1 + bits.read(sizes[bits.read(2)])
        if is_run:
            values.append(bits.read(word))
            repeats.append(length)
        else:
            values.extend(bits.read(word) for _ in range(length))
            repeats.extend(repeat(1, length))
        done += length
    if done != count:
        raise RLEError(f"the RLE stream holds {done} values but its header says {count}")
    return count, values, repeats


def decode_rle(rle: Sequence[int] | bytes) -> list[int]:
    """Decode brush RLE bytes into the flat list of RGBA values (4 per pixel).

    The output has as many values as the header declares: check `rle_length(rle)` first when
    the stream is untrusted (`rle_to_mask` and `rle_to_array` do).
    """
    _, values, repeats = _chunks(rle)
    out: list[int] = []
    for value, times in zip(values, repeats, strict=True):
        out.extend(repeat(value, times))
    return out


def _shape_check(count: int, width: int, height: int) -> None:
    if count != width * height * 4:
        raise RLEError(
            f"the RLE holds {count} values, not {width}x{height}x4 = {width * height * 4}"
        )


def rle_to_mask(rle: Sequence[int] | bytes, width: int, height: int) -> list[list[int]]:
    """Decode brush RLE into `height` rows of `width` alpha values (0..255).

    The header is checked against the size first, so a stream declaring more values than the
    image holds is refused before anything is decoded.
    """
    _shape_check(rle_length(rle), width, height)
    flat = decode_rle(rle)
    alpha = flat[3::4]
    return [alpha[row * width : (row + 1) * width] for row in range(height)]


def rle_to_array(rle: Sequence[int] | bytes, width: int, height: int) -> Any:
    """Decode brush RLE into a NumPy uint8 array of shape (height, width, 4). Needs numpy."""
    np = _numpy()
    if np is None:  # pragma: no cover - numpy is in the dev extra
        raise ImportError("rle_to_array needs numpy: pip install 'relaxml[numpy]'")
    _shape_check(rle_length(rle), width, height)
    _, values, repeats = _chunks(rle)
    flat = np.repeat(np.asarray(values, dtype=np.uint8), np.asarray(repeats, dtype=np.int64))
    return flat.reshape(height, width, 4)
