"""relaxml: put any model behind Label Studio.

Subclass `LabelStudioModel`, implement `predict` (and optionally `fit`), then serve it with
`relaxml serve module:Class` or `create_app(Class)`.
"""

from __future__ import annotations

from .__about__ import __version__
from .app import create_app
from .context import Context
from .errors import HTTPError
from .events import TrainingEvent
from .labelconfig import LabelConfig, LabelConfigError, parse_label_config
from .model import LabelStudioModel
from .prediction import Prediction
from .projects import Project
from .protocol import Task
from .results import ResultBuilder, ResultError, UnknownLabelError
from .settings import Settings
from .tags import ControlTag, Label, ObjectTag
from .validation import Problem, check_prediction

__all__ = [
    "Context",
    "ControlTag",
    "HTTPError",
    "Label",
    "LabelConfig",
    "LabelConfigError",
    "LabelStudioModel",
    "ObjectTag",
    "Prediction",
    "Problem",
    "Project",
    "ResultBuilder",
    "ResultError",
    "Settings",
    "Task",
    "TrainingEvent",
    "UnknownLabelError",
    "__version__",
    "check_prediction",
    "create_app",
    "parse_label_config",
]
