"""Label configs and the results Label Studio stores for them.

Parse a project's label config (`parse_label_config`), find the control a model predicts for
(`find_target`), build results that fit it (`ResultBuilder`), check results as Label Studio's
editor reads them (`check_prediction`, `check_result`), convert coordinates
(`relaxml.labels.geometry`) and brush masks (`relaxml.labels.rle`), and read the prompts of an
interactive call (`parse_prompts`).
"""

from __future__ import annotations

from .geometry import (
    GeometryError,
    box_to_percent,
    ellipse_to_percent,
    percent_to_box,
    point_to_percent,
)
from .labelconfig import LabelConfig, LabelConfigError, UnknownTagError, parse_label_config
from .prompts import Prompt, Prompts, UnparsedPrompt, is_negative_label, parse_prompts
from .results import ResultBuilder, ResultError, UnknownLabelError
from .rle import (
    RLEError,
    decode_rle,
    encode_rle,
    mask_to_rle,
    rle_length,
    rle_to_array,
    rle_to_mask,
)
from .tags import ControlTag, Label, ObjectTag, match_label
from .target import NoTargetError, Target, find_target
from .validation import Problem, check_prediction, check_result

__all__ = [
    "ControlTag",
    "GeometryError",
    "Label",
    "LabelConfig",
    "LabelConfigError",
    "NoTargetError",
    "ObjectTag",
    "Problem",
    "Prompt",
    "Prompts",
    "RLEError",
    "ResultBuilder",
    "ResultError",
    "Target",
    "UnknownLabelError",
    "UnknownTagError",
    "UnparsedPrompt",
    "box_to_percent",
    "check_prediction",
    "check_result",
    "decode_rle",
    "ellipse_to_percent",
    "encode_rle",
    "find_target",
    "is_negative_label",
    "mask_to_rle",
    "match_label",
    "parse_label_config",
    "parse_prompts",
    "percent_to_box",
    "point_to_percent",
    "rle_length",
    "rle_to_array",
    "rle_to_mask",
]
