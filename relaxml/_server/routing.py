"""`ModelRouter`: which model instance serves a project.

A shared model has one instance (the keeper's) for every project; a `per_project` model has
one per Label Studio project (`relaxml._training.instances`), built on first use and given
`setup(project)` once the project is known.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .._training.instances import ProjectModels
from .._training.keeper import ModelKeeper
from .._training.versions import ALL_PROJECTS
from ..errors import ModelError, describe
from ..projects import Project, ProjectRegistry

logger = logging.getLogger(__name__)

CallUser = Callable[..., Awaitable[Any]]


class ModelRouter:
    """The keeper (instance and version) that serves and trains each project."""

    def __init__(
        self,
        keeper: ModelKeeper,
        instances: ProjectModels | None,
        projects: ProjectRegistry,
        name: str,
        call_user: CallUser,
    ) -> None:
        self.keeper = keeper
        self.instances = instances
        self.per_project = instances is not None
        self.projects = projects
        self.name = name
        self._call_user = call_user

    def key(self, project: Project | None) -> str:
        """The key of a project's model instance and versions: its numeric id for a
        per-project model (`unknown` without one), `*` otherwise."""
        if not self.per_project:
            return ALL_PROJECTS
        return str(project.id) if project is not None and project.id is not None else "unknown"

    def version_for(self, project: Project) -> str:
        """The version serving `project` now: its resident instance's for a per-project model
        (the class's version when none is resident), the model's otherwise. Any thread."""
        keeper = self.instances.peek(self.key(project)) if self.instances else None
        return (keeper or self.keeper).model.model_version

    async def keeper_for(self, key: str, *, changed: Project | None = None) -> ModelKeeper:
        """The keeper of the instance that serves and trains project `key`. A per-project
        instance gets `setup(project)` once the project is known, again when it is a new
        instance (built, or swapped in for a new version), and when `/setup` `changed` it."""
        if self.instances is None or key == ALL_PROJECTS:
            return self.keeper
        try:
            keeper, _ = await self.instances.get(key)
        except Exception as exc:
            logger.error("building %s for project %s failed", self.name, key, exc_info=exc)
            raise ModelError(
                f"building {self.name} for project {key} raised {describe(exc)}"
            ) from None
        model = keeper.model
        project = changed or (self.projects.by_id(int(key)) if key.isdigit() else None)
        if project is not None and (changed is not None or keeper.set_up is not model):
            keeper.set_up = model
            await self._call_user(model.setup, project, what="setup")
        return keeper
