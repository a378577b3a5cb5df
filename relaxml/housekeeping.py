"""Routes Label Studio defines but 1.23 never calls: `/validate`, `/delete`, `/duplicate_model`.

They answer sensible JSON instead of a 404 page.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from .errors import BadRequest
from .protocol import as_mapping

if TYPE_CHECKING:
    from .backend import Backend


def validate(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /validate`: is this label config well-formed XML?"""
    config = as_mapping(body).get("config")
    if not isinstance(config, str) or not config.strip():
        raise BadRequest("missing field 'config': expected the label config XML", field="config")
    try:
        ET.fromstring(config)
    except ET.ParseError as exc:
        raise BadRequest(f"the label config is not valid XML: {exc}", field="config") from None
    return {"status": "ok"}


def delete(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /delete`: forget a project's state."""
    project = as_mapping(body).get("project")
    if not isinstance(project, (str, int)) or isinstance(project, bool):
        raise BadRequest("missing field 'project'", field="project")
    known = backend.projects.forget(str(project))
    return {"status": "ok" if known else "unknown", "project": str(project)}


def duplicate_model(backend: Backend, body: object) -> dict[str, Any]:
    """`POST /duplicate_model`: copy a project's state to another project."""
    obj = as_mapping(body)
    source, target = obj.get("project_src"), obj.get("project_dst")
    for name, value in (("project_src", source), ("project_dst", target)):
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise BadRequest(f"missing field '{name}'", field=name)
    copied = backend.projects.copy(str(source), str(target))
    return {"status": "ok" if copied else "unknown", "model_version": backend.model_version}
