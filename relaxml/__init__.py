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
from .model import LabelStudioModel
from .prediction import Prediction
from .projects import Project
from .protocol import Task
from .settings import Settings

__all__ = [
    "Context",
    "HTTPError",
    "LabelStudioModel",
    "Prediction",
    "Project",
    "Settings",
    "Task",
    "TrainingEvent",
    "__version__",
    "create_app",
]
