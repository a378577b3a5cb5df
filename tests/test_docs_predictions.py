"""Every Python example of docs/predictions.md and docs/coordinates.md runs, and is valid."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from relaxml import ResultBuilder, check_prediction

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = ("predictions.md", "coordinates.md")


def examples() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = (DOCS / page).read_text()
        for number, block in enumerate(re.findall(r"```python\n(.*?)```", text, re.S), 1):
            found.append((f"{page}#{number}", block))
    return found


@pytest.mark.parametrize(("where", "code"), examples(), ids=[w for w, _ in examples()])
def test_example_runs_and_builds_valid_results(where, code):
    namespace: dict[str, object] = {}
    exec(compile(code, where, "exec"), namespace)
    for value in namespace.values():
        if isinstance(value, ResultBuilder):
            assert value.result, f"{where}: a builder built nothing"
            assert check_prediction(value.config, {"result": value.result}) == []


def test_one_example_per_control_type():
    text = (DOCS / "predictions.md").read_text()
    for method in (
        "choices",
        "span",
        "html_span",
        "audio_segment",
        "rectangle",
        "polygon",
        "keypoint",
        "ellipse",
        "brush",
        "textarea",
        "number",
        "rating",
        "taxonomy",
        "datetime",
        "timeseries_span",
        "paragraph_span",
        "video_rectangle",
        "timeline",
        "ocr_region",
        "pairwise",
        "ranker",
        "chat_message",
        "relation",
    ):
        assert f"build.{method}(" in text, method
        assert callable(getattr(ResultBuilder, method))
