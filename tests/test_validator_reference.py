"""`check_prediction` against Label Studio 1.23.2's own prediction validator
(`LabelInterface.validate_prediction` of its SDK), run live from the Label Studio venv.

The configs: the 69 templates Label Studio bundles, and one of relaxml's with the controls no
template has (ellipses, keypoints, a brush, Number, DateTime). For every control of every
config, a valid item and wrong ones (tests/support/validator_cases.py): unknown `from_name`,
`to_name` or `type`, a missing or malformed `value`, missing, malformed or unknown labels,
out-of-range values, and each rule of the validator (a rotation over 360, a radius over 50, a
TextArea `text` that is a string, negative HyperText offsets, a TimeSeriesLabels span without
`instant`, ...); per config, prediction scores outside 0-1 and relations without a valid
`direction`; `Labels` merged with a tool on the same object (`rectanglelabels` from a `Labels`
control), and the messages of a `<Chat>` without `toName`. All go to the validator in one
subprocess call.

2456 cases compared; relaxml and Label Studio agree on 2163. Label Studio rejects 1797 of
them, and relaxml rejects every one of those: there is no case Label Studio rejects and relaxml
accepts. In the other 293, relaxml is stricter, in these kinds only:

- `type-in-capitals` (141): Label Studio compares `type` ignoring case; relaxml wants the
  control's type as the editor writes it, lower case.
- `relation/unknown-label` (70): Label Studio does not look at a relation's labels; relaxml
  wants them in `<Relations>`.
- `two-choices-for-single` (38): two choices for a single-choice `Choices`.
- `original-size-missing` (17): an image region without `original_width` and
  `original_height`, which the editor needs to place it.
- `x-negative`, `past-the-right-edge` (8 each): a box starting left of the image or running
  past its right edge (Label Studio checks only each value's upper bound).
- `instant-as-1` (5): a TimeSeriesLabels `instant` that is 1, not `true` (Label Studio coerces).
- `selected-neither-side` (2): a Pairwise choice other than `left` or `right`.
- `rle-of-another-size` (2): a brush RLE whose length does not fit the image's size.
- `number-over-max` (1): a Number beyond the tag's `max`.
- `value-not-a-dict` (1): a `value` that is not a dict, for a control Label Studio has no
  value rules for (`Chat`).

Skipped when that venv is missing, unless `RELAXML_E2E=require`.
"""

from __future__ import annotations

import os
from collections import Counter

import pytest

from relaxml.labels import check_prediction

from .support.validator_cases import EXTRA, cases, read_templates
from .support.validator_reference import reference_python, run_validator, template_dir

CASES = 2456
AGREE = 2163
STRICTER = {
    "type-in-capitals",
    "relation/unknown-label",
    "two-choices-for-single",
    "original-size-missing",
    "x-negative",
    "past-the-right-edge",
    "instant-as-1",
    "selected-neither-side",
    "rle-of-another-size",
    "number-over-max",
    "value-not-a-dict",
}
"""The kinds of case where relaxml may reject what Label Studio accepts (the docstring says why)."""


@pytest.fixture(scope="module")
def compared() -> list[tuple[dict, bool, bool]]:
    """Each case, whether Label Studio rejects it, whether relaxml does."""
    templates = template_dir()
    if not reference_python().exists() or templates is None:
        reason = f"the Label Studio venv is missing ({reference_python()})"
        if os.environ.get("RELAXML_E2E", "").strip().lower() == "require":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    configs = read_templates(templates)
    configs["relaxml/extra"] = EXTRA
    generated = cases(configs)
    as_label_studio_reads_them, answers = run_validator(configs, generated)
    assert as_label_studio_reads_them == {k: v for k, v in configs.items() if k != "relaxml/extra"}
    return [
        (case, bool(errors), bool(check_prediction(configs[case["config"]], case["prediction"])))
        for case, errors in zip(generated, answers, strict=True)
    ]


def test_every_bundled_template_is_compared(compared):
    names = {case["config"] for case, _, _ in compared}
    assert len(names) == 70
    assert len(compared) == CASES


def test_nothing_label_studio_rejects_passes_check_prediction(compared):
    missed = [
        (case["config"], case["kind"])
        for case, ls_rejects, ours in compared
        if ls_rejects and not ours
    ]
    assert missed == []


def test_relaxml_is_stricter_only_in_the_documented_kinds(compared):
    stricter = Counter(
        next((k for k in STRICTER if case["kind"].endswith(k)), case["kind"])
        for case, ls_rejects, ours in compared
        if ours and not ls_rejects
    )
    assert set(stricter) <= STRICTER, stricter
    assert sum(ls_rejects == ours for _, ls_rejects, ours in compared) == AGREE


def test_valid_items_pass_both(compared):
    valid = [(case, ls, ours) for case, ls, ours in compared if case["kind"].endswith("/valid")]
    assert len(valid) > 200
    assert [(c["config"], c["kind"]) for c, ls, ours in valid if ls or ours] == []


def test_each_rule_of_label_studio_is_exercised(compared):
    """The rules relaxml used to miss, each rejected by both in at least one case."""
    both = {case["kind"] for case, ls_rejects, ours in compared if ls_rejects and ours}
    for kind in (
        "score/over-1",
        "score/negative",
        "rectanglelabels/rotation-over-360",
        "ellipselabels/rotation-over-360",
        "ellipse/radius-over-50",
        "textarea/text-a-string",
        "hypertextlabels/negative-start-offset",
        "paragraphlabels/fractional-end-offset",
        "timeserieslabels/instant-missing",
        "relation/direction-missing",
        "relation/direction-up",
        "ranker/ranker-a-list",
        "pairwise/selected-a-list",
        "timelinelabels/ranges-empty",
        "videorectangle/frame-width-over-100",
        "ocrlabels/x-not-a-number",
        "chatmessage/content-missing",
        "labels/merged-rectanglelabels/unknown-label",
        "labels/merged-videorectanglelabels/frames-count-missing",
    ):
        assert kind in both, kind
