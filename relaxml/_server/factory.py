"""`app_from_env`: build the app in a worker process from the environment the CLI set."""

from __future__ import annotations

import os

from starlette.applications import Starlette

from ..logs import configure_logging
from ..settings import Settings
from .app import build_app
from .arenas import limit_malloc_arenas
from .collector import relax_collector
from .loader import load_model_class


def app_from_env() -> Starlette:
    """The app for `RELAXML_TARGET`, with settings from `RELAXML_*` variables."""
    configure_logging(os.environ.get("RELAXML_LOG_LEVEL", "info"))
    limit_malloc_arenas()
    target = os.environ["RELAXML_TARGET"]
    model_class = load_model_class(target, os.environ.get("RELAXML_APP_DIR", "."))
    relax_collector()  # after the model's module: its own collector settings win
    workers = int(os.environ.get("RELAXML_WORKERS", "1"))
    return build_app(model_class, Settings.from_env(), workers=workers)
