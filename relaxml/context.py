"""`Context`: everything about a `/predict` call that is not the tasks themselves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .projects import Project


@dataclass(frozen=True)
class Context:
    """What a model's `predict` gets beside the tasks.

    - `project`: the project, as known from `/setup` (label config, host, extra params).
    - `label_config`: the labeling config XML of this call.
    - `interactive`: the regions an annotator just drew with a smart tool (Label Studio's
      `params.context`), or None for ordinary calls.
    - `params`: the raw `params` object of the request, credentials removed.
    """

    project: Project
    label_config: str | None = None
    interactive: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_interactive(self) -> bool:
        """True when an annotator is waiting on this call with a smart tool."""
        return self.interactive is not None
