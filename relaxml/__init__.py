"""relaxml: put any model behind Label Studio.

Subclass `LabelStudioModel`, implement `predict` (and optionally `fit`), then serve it with
`relaxml serve module:Class` or `create_app(Class)`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .__about__ import __version__
from .context import Context
from .errors import HTTPError
from .events import TrainingEvent
from .labels.labelconfig import LabelConfig, LabelConfigError, parse_label_config
from .labels.results import ResultBuilder, ResultError, UnknownLabelError
from .labels.tags import ControlTag, Label, ObjectTag
from .labels.validation import Problem, check_prediction
from .logs import configure_logging
from .model import LabelStudioModel
from .prediction import Prediction
from .projects import Project
from .protocol import Task
from .settings import Settings

if TYPE_CHECKING:
    from ._server.app import create_app

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
    "configure_logging",
    "create_app",
    "parse_label_config",
]


def __getattr__(name: str) -> Any:
    # The server is imported on first use: `import relaxml` and a model class load no
    # Starlette, anyio or uvicorn, so another engine (a batch job, Ray) can run the model.
    if name == "create_app":
        from ._server.app import create_app

        return create_app
    raise AttributeError(f"module 'relaxml' has no attribute {name!r}")
