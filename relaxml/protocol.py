"""Label Studio's wire format: the typed requests relaxml reads from it.

Each `parse_*` function takes the decoded JSON body of one route and returns a frozen dataclass,
or raises `BadRequest` naming the first field at fault. The shapes follow Label Studio 1.23
(see docs/routes.md): `project` is the string `"<id>.<created_ts>"`, `extra_params` may be an
object, a JSON string or null, and tasks carry far more keys than relaxml needs, kept in `raw`.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import compress
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from ._redaction import remember, remember_params
from .errors import BadRequest

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
"""Task, project and job ids are stored as SQLite integers: 64-bit, signed."""

MAX_DEPTH = 100
"""How deeply JSON arrays and objects may nest in a request body. Label Studio's deepest
payloads (a task with annotations and polygon points) nest about ten levels."""


@dataclass
class Task:
    """One Label Studio task as `/predict` received it.

    `data` is the task's data exactly as Label Studio sent it (file URLs are not resolved).
    `raw` is the whole task object, with `meta`, `annotations`, `predictions` and the rest.
    """

    id: int
    data: dict[str, Any]
    project_id: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def meta(self) -> dict[str, Any]:
        """The task's `meta` object (empty when absent)."""
        meta = self.raw.get("meta")
        return meta if isinstance(meta, dict) else {}

    @property
    def annotations(self) -> list[dict[str, Any]]:
        """The annotations Label Studio sent with the task (often empty)."""
        return _dicts(self.raw.get("annotations"))

    @property
    def predictions(self) -> list[dict[str, Any]]:
        """The predictions Label Studio sent with the task (often empty)."""
        return _dicts(self.raw.get("predictions"))


@dataclass(frozen=True)
class SetupRequest:
    """The body of `POST /setup`."""

    project: str
    label_config: str | None
    hostname: str | None = None
    access_token: str | None = field(default=None, repr=False)
    extra_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PredictRequest:
    """The body of `POST /predict`.

    `context` is `params.context`: the regions an annotator just drew with a smart tool, set
    only on interactive calls. `login` and `password` are the project's task-data credentials.
    """

    tasks: list[Task]
    project: str | None = None
    label_config: str | None = None
    context: dict[str, Any] | None = None
    params: dict[str, Any] = field(default_factory=dict, repr=False)
    login: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def is_interactive(self) -> bool:
        """True for an interactive (smart tool) call."""
        return self.context is not None


def project_id_of(project: str | None) -> int | None:
    """The numeric project id of a project uid such as `"12.1795845042"`, if it has one."""
    if not project:
        return None
    return ascii_int(project.split(".", 1)[0])


def ascii_int(text: str) -> int | None:
    """`text` as an integer if it is ASCII digits only and fits 64 bits, else None.

    `str.isdigit` alone accepts `"²"` and other Unicode digits, which `int()` refuses.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    number = int(text)
    return number if number <= INT64_MAX else None


def is_int64(value: object) -> TypeGuard[int]:
    """Whether `value` is an int (not a bool) that fits a signed 64-bit integer."""
    return type(value) is int and INT64_MIN <= value <= INT64_MAX


def check_hostname(value: str | None, where: str = "hostname") -> str | None:
    """`value` if it is an http(s) URL with a host (blank: None); else a 422 naming `where`."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not is_http_url(text):
        raise BadRequest(
            f"'{where}' must be an http:// or https:// URL with a host, such as "
            f"http://label-studio:8080, got {text[:100]!r}",
            field=where,
        )
    return text


def is_http_url(text: str) -> bool:
    """Whether `text` is an http(s) URL with a host and a valid port (if any)."""
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return False
    return parts.scheme.lower() in ("http", "https") and bool(parts.hostname)


def parse_setup(body: object) -> SetupRequest:
    """Parse the body of `POST /setup`."""
    obj = _object(body, "body")
    project = _project(obj.get("project"), "project", required=True)
    assert project is not None
    remember(obj.get("access_token"))  # secrets never reach a log line or an answer
    extra_params = parse_extra_params(obj.get("extra_params"))
    remember_params(extra_params)
    return SetupRequest(
        project=project,
        label_config=_opt_str(obj.get("schema", obj.get("label_config")), "schema"),
        hostname=check_hostname(_opt_str(obj.get("hostname"), "hostname")),
        access_token=_opt_str(obj.get("access_token"), "access_token"),
        extra_params=extra_params,
    )


def parse_predict(body: object) -> PredictRequest:
    """Parse the body of `POST /predict`."""
    obj = _object(body, "body")
    if "tasks" not in obj:
        raise BadRequest("missing field 'tasks': expected a list of task objects", field="tasks")
    raw_tasks = obj["tasks"]
    if not isinstance(raw_tasks, list):
        raise BadRequest(f"'tasks' must be a list, got {_kind(raw_tasks)}", field="tasks")
    try:
        tasks = [parse_task(item) for item in raw_tasks]
    except BadRequest:  # again, for the error that names the task's position
        tasks = [parse_task(item, f"tasks[{i}]") for i, item in enumerate(raw_tasks)]
    params = obj.get("params")
    if params is None:
        params = {}
    elif not isinstance(params, dict):
        raise BadRequest(f"'params' must be an object, got {_kind(params)}", field="params")
    remember(params.get("password"))  # never in a log line or an answer
    context = params.get("context")
    if context is not None and not isinstance(context, dict):
        raise BadRequest(
            f"'params.context' must be an object or null, got {_kind(context)}",
            field="params.context",
        )
    return PredictRequest(
        tasks=tasks,
        project=_project(obj.get("project"), "project", required=False),
        label_config=_opt_str(obj.get("label_config"), "label_config"),
        context=context,
        params=params,
        login=_opt_str(params.get("login"), "params.login"),
        password=_opt_str(params.get("password"), "params.password"),
    )


def parse_task(value: object, where: str = "task") -> Task:
    """Parse one task object; `where` names it in errors."""
    if type(value) is dict:  # the common case, a well-formed task, checked in one go
        task_id, data = value.get("id"), value.get("data")
        if type(task_id) is int and INT64_MIN <= task_id <= INT64_MAX and type(data) is dict:
            project = value.get("project")
            if type(project) is not int or not INT64_MIN <= project <= INT64_MAX:
                project = None
            return Task(task_id, data, project, value)
    obj = _object(value, where)
    task_id = obj.get("id")
    if type(task_id) is not int:  # also refuses bool, a subclass of int
        if task_id is None:
            raise BadRequest(f"missing field '{where}.id'", field=f"{where}.id")
        raise BadRequest(
            f"'{where}.id' must be an integer, got {_kind(task_id)}", field=f"{where}.id"
        )
    if not is_int64(task_id):
        raise BadRequest(
            f"'{where}.id' is out of range: task ids are 64-bit integers", field=f"{where}.id"
        )
    data = obj.get("data")
    if type(data) is not dict:
        what = "missing" if data is None else f"must be an object, got {_kind(data)}"
        raise BadRequest(f"'{where}.data' {what}", field=f"{where}.data")
    project = obj.get("project")
    return Task(task_id, data, project if is_int64(project) else None, obj)


def parse_extra_params(value: object) -> dict[str, Any]:
    """Accept `extra_params` as a JSON object, a string holding one, an empty string or null."""
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise BadRequest(
                "'extra_params' is a string but not valid JSON", field="extra_params"
            ) from None
        if depth_exceeds(value, MAX_DEPTH):
            raise BadRequest(
                f"'extra_params' nests more than {MAX_DEPTH} levels deep", field="extra_params"
            )
    if not isinstance(value, dict):
        raise BadRequest(
            f"'extra_params' must be a JSON object, got {_kind(value)}", field="extra_params"
        )
    return value


def depth_exceeds(value: object, limit: int) -> bool:
    """Whether arrays and objects in `value` (as `json.loads` makes them) nest more than `limit`
    deep. Level by level, without recursion: `gc.get_referents` lists the members of a whole
    level in one call (an object's values, an array's items), and the containers among them
    are picked out without a Python-level loop."""
    level: list[Any] = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        members = gc.get_referents(*level)
        level = list(compress(members, map(_CONTAINERS.__contains__, map(type, members))))
    return False


_CONTAINERS = frozenset({dict, list})


def _project(value: object, where: str, *, required: bool) -> str | None:
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing field '{where}'", field=where)
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BadRequest(f"'{where}' must be a string, got {_kind(value)}", field=where)
    return str(value)


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        if where == "body":
            raise BadRequest(f"the request body must be a JSON object, got {_kind(value)}")
        raise BadRequest(f"'{where}' must be an object, got {_kind(value)}", field=where)
    return value


def _opt_str(value: object, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise BadRequest(f"'{where}' must be a string or null, got {_kind(value)}", field=where)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _kind(value: object) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def as_mapping(value: object) -> Mapping[str, Any]:
    """`value` if it is a JSON object, else an empty mapping."""
    return value if isinstance(value, dict) else {}
