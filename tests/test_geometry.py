"""Pixel ⇄ percent conversions, with property tests for the round trips."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from relaxml.labels.geometry import (
    GeometryError,
    box_to_percent,
    ellipse_to_percent,
    percent_to_box,
    point_to_percent,
)

sizes = st.tuples(st.integers(1, 8000), st.integers(1, 8000))
angles = st.floats(-720, 720, allow_nan=False)


def test_box_formats_agree():
    size = (640, 480)
    expected = {"x": 10.0, "y": 25.0, "width": 50.0, "height": 50.0, "rotation": 0.0}
    assert box_to_percent((64, 120, 384, 360), size) == expected
    assert box_to_percent((64, 120, 320, 240), size, format="xywh") == expected
    assert box_to_percent((224, 240, 320, 240), size, format="cxcywh") == expected
    assert box_to_percent((10, 25, 60, 75), size, unit="percent") == expected
    assert box_to_percent((0.1, 0.25, 0.6, 0.75), size, unit="fraction") == pytest.approx(expected)


def test_rotated_centre_box_becomes_label_studios_corner_form():
    # A 200x100 box centred at (500, 400), turned 90 degrees clockwise: its top-left corner
    # (before rotation, turning about itself) lands at (550, 300).
    value = box_to_percent((500, 400, 200, 100), (1000, 800), format="cxcywh", rotation=90)
    assert value["x"] == pytest.approx(55.0)
    assert value["y"] == pytest.approx(37.5)
    assert value["width"] == pytest.approx(20.0)
    assert value["height"] == pytest.approx(12.5)
    assert value["rotation"] == 90


def test_rotation_is_normalised_and_corner_boxes_keep_their_corner():
    value = box_to_percent((10, 10, 20, 20), (100, 100), rotation=-30)
    assert value["rotation"] == 330
    assert (value["x"], value["y"]) == (10, 10)


def test_points_and_ellipses():
    assert point_to_percent((320, 120), (640, 480)) == (50.0, 25.0)
    assert point_to_percent((0.5, 0.25), (640, 480), unit="fraction") == (50.0, 25.0)
    assert ellipse_to_percent((320, 240), (64, 48), (640, 480), rotation=370) == {
        "x": 50.0,
        "y": 50.0,
        "radiusX": 10.0,
        "radiusY": 10.0,
        "rotation": 10.0,
    }


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: box_to_percent((1, 2, 3), (10, 10)), "needs 4 numbers"),
        (lambda: box_to_percent((5, 5, 1, 1), (10, 10)), "negative width"),
        (lambda: box_to_percent((1, 2, 3, 4), (0, 10)), "two positive numbers"),
        (lambda: box_to_percent((1, 2, 3, 4), (10,)), r"\(width, height\)"),
        (lambda: box_to_percent((1, 2, 3, math.nan), (10, 10)), "non-finite"),
        (lambda: box_to_percent((1, 2, 3, 4), (10, 10), format="yolo"), "format must be"),
        (lambda: box_to_percent((1, 2, 3, 4), (10, 10), unit="cm"), "unit must be"),
        (lambda: box_to_percent((1, 2, 3, 4), (10, 10), rotation=math.inf), "rotation"),
        (lambda: percent_to_box({}, (10, 10), format="yolo"), "format must be"),
        (lambda: ellipse_to_percent((1, 1), (-1, 1), (10, 10)), "negative"),
        (lambda: ellipse_to_percent((1, 1), (1, 1), (10, 10), rotation=math.nan), "rotation"),
        (lambda: point_to_percent((1,), (10, 10)), "needs 2 numbers"),
    ],
)
def test_bad_input_raises_geometry_error(call, message):
    with pytest.raises(GeometryError, match=message):
        call()


@given(
    size=sizes,
    data=st.data(),
    fmt=st.sampled_from(["xyxy", "xywh", "cxcywh"]),
)
def test_box_round_trip(size, data, fmt):
    width, height = size
    x0 = data.draw(st.floats(0, width))
    y0 = data.draw(st.floats(0, height))
    x1 = data.draw(st.floats(x0, width))
    y1 = data.draw(st.floats(y0, height))
    box = {
        "xyxy": (x0, y0, x1, y1),
        "xywh": (x0, y0, x1 - x0, y1 - y0),
        "cxcywh": ((x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0),
    }[fmt]
    value = box_to_percent(box, size, format=fmt)
    # An axis-aligned box inside the image stays within 0-100.
    for key in ("x", "y", "width", "height"):
        assert -1e-9 <= value[key] <= 100 + 1e-9
    assert value["x"] + value["width"] <= 100 + 1e-9
    assert value["y"] + value["height"] <= 100 + 1e-9
    back = percent_to_box(value, size, format=fmt)
    assert back == pytest.approx(box, abs=1e-6 * max(size))


@given(size=sizes, data=st.data(), rotation=angles)
def test_rotated_centre_box_round_trip(size, data, rotation):
    width, height = size
    box = (
        data.draw(st.floats(0, width)),
        data.draw(st.floats(0, height)),
        data.draw(st.floats(0, width)),
        data.draw(st.floats(0, height)),
    )
    value = box_to_percent(box, size, format="cxcywh", rotation=rotation)
    assert 0 <= value["rotation"] < 360
    back = percent_to_box(value, size, format="cxcywh")
    assert back == pytest.approx(box, abs=1e-6 * max(size))


@given(size=sizes, data=st.data(), unit=st.sampled_from(["px", "percent", "fraction"]))
def test_point_units_agree(size, data, unit):
    width, height = size
    x, y = data.draw(st.floats(0, width)), data.draw(st.floats(0, height))
    scaled = {"px": (x, y), "percent": (x / width * 100, y / height * 100)}
    scaled["fraction"] = (x / width, y / height)
    assume(all(math.isfinite(v) for v in scaled[unit]))
    px, py = point_to_percent(scaled[unit], size, unit=unit)
    assert 0 <= px <= 100 + 1e-9
    assert 0 <= py <= 100 + 1e-9
    assert (px / 100 * width, py / 100 * height) == pytest.approx((x, y), abs=1e-6 * max(size))
