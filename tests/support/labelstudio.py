"""Install, run and drive a real Label Studio 1.23.2 for end-to-end tests.

Label Studio runs as a subprocess on 127.0.0.1 with a SQLite database in its own data directory,
configured as in section 10 of the Label Studio wire contract: loopback ML backends
allowed, legacy user tokens enabled, Local Files serving on, no outbound traffic.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from .processes import LOOPBACK, merged_environment, port_is_listening, spawn, tail, terminate

LABEL_STUDIO_VERSION = "1.23.2"
VENV_ENV_VAR = "RELAXML_LABEL_STUDIO_VENV"
START_TIMEOUT = 180.0
API_TIMEOUT = 120.0

logger = logging.getLogger(__name__)


class LabelStudioError(RuntimeError):
    """Label Studio could not be installed, started or reached."""


class ApiError(LabelStudioError):
    """A Label Studio API call answered with a non-2xx status."""

    def __init__(self, response: requests.Response) -> None:
        self.response = response
        request = response.request
        super().__init__(
            f"{request.method} {request.url} -> {response.status_code}: {response.text[:2000]}"
        )


def default_venv() -> Path:
    """Return the Label Studio venv: `$RELAXML_LABEL_STUDIO_VENV`, else under the XDG cache dir."""
    configured = os.environ.get(VENV_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "relaxml-tests" / f"label-studio-{LABEL_STUDIO_VERSION}"


def find_or_install_label_studio(progress: Callable[[str], None] = logger.info) -> Path:
    """Return the `label-studio` executable, installing it into `default_venv()` if needed.

    Installing takes about 3 minutes; `progress` receives a line before each step. Concurrent test
    sessions serialise on a lock file next to the venv. Raises `LabelStudioError` on failure.
    """
    venv = default_venv()
    executable = venv / "bin" / "label-studio"
    if executable.exists():
        return executable
    venv.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(venv.with_name(venv.name + ".lock")):
        if not executable.exists():
            _install(venv, progress)
    if not executable.exists():
        raise LabelStudioError(f"installation finished but {executable} does not exist")
    return executable


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` for the duration of the block."""
    with path.open("w") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def _install(venv: Path, progress: Callable[[str], None]) -> None:
    """Create `venv` and pip-install Label Studio into it, logging pip's output next to it."""
    log_path = venv.with_name(venv.name + "-install.log")
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            f"label-studio=={LABEL_STUDIO_VERSION}",
        ],
    ]
    progress(
        f"Installing label-studio=={LABEL_STUDIO_VERSION} into {venv} "
        f"(about 3 minutes, log: {log_path})"
    )
    with log_path.open("w", encoding="utf-8") as log_file:
        for argv in steps:
            progress("Running: " + " ".join(argv))
            log_file.write("$ " + " ".join(argv) + "\n")
            log_file.flush()
            try:
                result = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT
                )
            except OSError as error:
                raise LabelStudioError(f"cannot run {argv[0]}: {error}") from error
            if result.returncode != 0:
                log_file.flush()
                raise LabelStudioError(
                    f"installing Label Studio failed: {' '.join(argv)} "
                    f"exited with {result.returncode}; "
                    f"last lines of {log_path}:\n{tail(log_path)}"
                )
    progress("Label Studio installed")


class LabelStudio:
    """One Label Studio server on 127.0.0.1 with its own data directory, plus API helpers.

    `stop()` and `start()` may be called repeatedly: the data directory, port, user and tokens
    stay the same across restarts. The API helpers need the server to be running.
    """

    def __init__(
        self,
        executable: Path,
        data_dir: Path,
        port: int,
        *,
        username: str = "relaxml@example.com",
        password: str = "relaxml-password",
        token: str | None = None,
        env: Mapping[str, str | None] | None = None,
    ) -> None:
        """Describe a server; `token` is the legacy user token (random by default).

        `env` is applied on top of the Label Studio environment; None removes a variable.
        """
        self.executable = executable
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self.username = username
        self.password = password
        self.token = token or secrets.token_hex(20)
        self.local_files_root = data_dir / "local-files"
        self.log_path = data_dir / "label-studio.log"
        self.extra_env: dict[str, str | None] = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._session: requests.Session | None = None
        self._personal_access_token: str | None = None

    def __enter__(self) -> LabelStudio:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        """Whether the Label Studio process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The process id of the running server, or None."""
        return self._process.pid if self._process is not None else None

    def environment(self) -> dict[str, str]:
        """Return the environment Label Studio is started with."""
        return merged_environment(
            {
                "LABEL_STUDIO_BASE_DATA_DIR": str(self.data_dir),
                "ML_BLOCK_LOCAL_IP": "false",
                "SSRF_PROTECTION_ENABLED": "false",
                "LABEL_STUDIO_HOST": self.url,
                "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
                "LOCAL_FILES_SERVING_ENABLED": "true",
                "LOCAL_FILES_DOCUMENT_ROOT": str(self.local_files_root),
                "LATEST_VERSION_CHECK": "false",
                "COLLECT_ANALYTICS": "false",
                "SENTRY_DSN": "",
                "PYTHONUNBUFFERED": "1",
                **self.extra_env,
            }
        )

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the server and wait until it is healthy and answers to our token on our port.

        The first start on a fresh data directory runs the migrations (about 40 s). Raises
        `LabelStudioError` with the tail of the log if the server exits or is not ready in time.
        """
        if self.running:
            raise LabelStudioError(f"Label Studio is already running on {self.url}")
        if port_is_listening(self.port):
            raise LabelStudioError(
                f"port {self.port} is busy; Label Studio would silently move to another port"
            )
        self.local_files_root.mkdir(parents=True, exist_ok=True)
        argv = [
            str(self.executable),
            "start",
            "--no-browser",
            "--internal-host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--username",
            self.username,
            "--password",
            self.password,
            "--user-token",
            self.token,
            "--enable-legacy-api-token",
        ]
        self._process = spawn(argv, self.environment(), self.log_path, cwd=self.data_dir)
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Token {self.token}"
        try:
            self._wait_until_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after 10 s. Idempotent."""
        if self._session is not None:
            self._session.close()
            self._session = None
        if self._process is not None:
            terminate(self._process)
            self._process = None

    def log_tail(self, lines: int = 40) -> str:
        """Return the last lines of the server log."""
        return tail(self.log_path, lines)

    def _wait_until_ready(self, timeout: float) -> None:
        """Poll `/health`, then check via `whoami` that the server on our port is ours."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise LabelStudioError(
                    f"Label Studio exited during startup; last lines of its log:\n{self.log_tail()}"
                )
            if self._is_healthy():
                self._check_identity()
                return
            time.sleep(0.5)
        raise LabelStudioError(
            f"Label Studio did not report healthy on {self.url} within {timeout:.0f} s; "
            f"last lines of its log:\n{self.log_tail()}"
        )

    def _is_healthy(self) -> bool:
        """Whether `GET /health` answers `{"status": "UP"}`."""
        try:
            response = requests.get(f"{self.url}/health", timeout=2.0)
            return response.status_code == 200 and response.json() == {"status": "UP"}
        except (requests.RequestException, ValueError):
            return False

    def _check_identity(self) -> None:
        """Make sure the server answering on our port accepts our token as our user."""
        response = self.api("GET", "/api/current-user/whoami", check=False)
        email = response.json().get("email") if response.ok else None
        if email != self.username:
            raise LabelStudioError(
                f"the server on {self.url} is not the Label Studio we started "
                f"(whoami -> {response.status_code}: {response.text[:500]}); "
                f"last lines of its log:\n{self.log_tail()}"
            )

    def api(
        self, method: str, path: str, *, check: bool = True, **kwargs: Any
    ) -> requests.Response:
        """Call the Label Studio API with the legacy token; raise `ApiError` on non-2xx.

        `check=False` returns any response. `path` starts with `/`; `kwargs` go to
        `requests.Session.request` (default timeout 120 s).
        """
        if self._session is None:
            raise LabelStudioError("Label Studio is not running")
        kwargs.setdefault("timeout", API_TIMEOUT)
        response = self._session.request(method, self.url + path, **kwargs)
        if check and not response.ok:
            raise ApiError(response)
        return response

    def create_project(self, title: str, label_config: str, **fields: Any) -> dict[str, Any]:
        """Create a project (the title needs at least 3 characters) and return it."""
        body = {"title": title, "label_config": label_config, **fields}
        project: dict[str, Any] = self.api("POST", "/api/projects/", json=body).json()
        return project

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> list[int]:
        """Import `tasks` (`{"data": ...}`, maybe with `predictions`); return their ids in order."""
        response = self.api(
            "POST",
            f"/api/projects/{project_id}/import",
            params={"return_task_ids": "true"},
            json=tasks,
        )
        task_ids: list[int] = response.json().get("task_ids", [])
        if len(task_ids) != len(tasks):
            raise LabelStudioError(
                f"imported {len(tasks)} tasks but got ids {task_ids}: {response.text[:500]}"
            )
        return task_ids

    def register_ml_backend(
        self,
        project_id: int,
        url: str,
        title: str = "relaxml",
        basic_auth: tuple[str, str] | None = None,
        is_interactive: bool = True,
        **fields: Any,
    ) -> dict[str, Any]:
        """Connect an ML backend to a project; Label Studio calls `/health` and `/setup` first."""
        body: dict[str, Any] = {
            "project": project_id,
            "url": url,
            "title": title,
            "is_interactive": is_interactive,
        }
        if basic_auth is not None:
            user, password = basic_auth
            body.update(auth_method="BASIC_AUTH", basic_auth_user=user, basic_auth_pass=password)
        body.update(fields)
        backend: dict[str, Any] = self.api("POST", "/api/ml/", json=body).json()
        return backend

    def patch_ml_backend(self, ml_id: int, url: str, **fields: Any) -> dict[str, Any]:
        """Update an ML backend; Label Studio 1.23.2 answers 500 unless `url` is repeated."""
        backend: dict[str, Any] = self.api(
            "PATCH", f"/api/ml/{ml_id}", json={"url": url, **fields}
        ).json()
        return backend

    def get_ml_backend(self, ml_id: int) -> dict[str, Any]:
        """Return an ML backend; Label Studio first refreshes `state` via `/health`, `/setup`."""
        backend: dict[str, Any] = self.api("GET", f"/api/ml/{ml_id}").json()
        return backend

    def retrieve_predictions(
        self, project_id: int, task_ids: list[int] | None = None
    ) -> dict[str, Any]:
        """Run the Data Manager action "Retrieve Predictions" on all tasks, or on `task_ids`."""
        selected: dict[str, Any] = (
            {"all": True, "excluded": []}
            if task_ids is None
            else {"all": False, "included": task_ids}
        )
        response = self.api(
            "POST",
            "/api/dm/actions",
            params={"id": "retrieve_tasks_predictions", "project": project_id},
            json={"selectedItems": selected},
        )
        answer: dict[str, Any] = response.json()
        return answer

    def get_task(self, task_id: int) -> dict[str, Any]:
        """Return a task with predictions and annotations; if it has none, `/predict` is called."""
        task: dict[str, Any] = self.api("GET", f"/api/tasks/{task_id}/").json()
        return task

    def list_predictions(
        self, project_id: int | None = None, task_id: int | None = None
    ) -> list[dict[str, Any]]:
        """Return the stored predictions, optionally only those of a project or of a task."""
        params = {
            name: value
            for name, value in (("project", project_id), ("task", task_id))
            if value is not None
        }
        predictions: list[dict[str, Any]] = self.api(
            "GET", "/api/predictions/", params=params
        ).json()
        return predictions

    def train(self, ml_id: int, *, check: bool = True) -> requests.Response:
        """Press "Start Training" for an ML backend (`POST /api/ml/{id}/train`)."""
        return self.api("POST", f"/api/ml/{ml_id}/train", json={}, check=check)

    def create_annotation(
        self, task_id: int, result: list[dict[str, Any]], **fields: Any
    ) -> dict[str, Any]:
        """Create an annotation on a task as our user and return it."""
        body = {"result": result, **fields}
        annotation: dict[str, Any] = self.api(
            "POST", f"/api/tasks/{task_id}/annotations/", json=body
        ).json()
        return annotation

    def personal_access_token(self, renew: bool = False) -> str:
        """Return our user's Personal Access Token (a JWT refresh token), creating it on first use.

        Label Studio allows one live PAT per user and never shows a PAT again after creating it;
        listing shows only its unsigned part. So when a PAT exists that we do not know, or when
        `renew` is true, every live PAT is revoked (the blacklist endpoint accepts the unsigned
        part) and a new one is created.
        """
        if self._personal_access_token is not None and not renew:
            return self._personal_access_token
        created = self.api("POST", "/api/token/", check=False)
        if created.status_code == 409:
            for listed in self.api("GET", "/api/token/").json():
                self.api("POST", "/api/token/blacklist/", json={"refresh": listed["token"]})
            created = self.api("POST", "/api/token/", check=False)
        if not created.ok:
            raise ApiError(created)
        token: str = created.json()["token"]
        self._personal_access_token = token
        return token

    def access_token(self, personal_access_token: str | None = None) -> str:
        """Exchange a PAT (ours by default) at `/api/token/refresh/` for a 5-minute Bearer token."""
        refresh = personal_access_token or self.personal_access_token()
        response = requests.post(
            f"{self.url}/api/token/refresh/", json={"refresh": refresh}, timeout=API_TIMEOUT
        )
        if not response.ok:
            raise ApiError(response)
        access: str = response.json()["access"]
        return access
