"""`ClientPool`: one `LabelStudioClient` per Label Studio URL and key, and whether it works.

The URL is `LABEL_STUDIO_URL` when set, else the `hostname` of the project's `/setup`; the key
is `LABEL_STUDIO_API_KEY` when set, else the project's `access_token` from `/setup`.
"""

from __future__ import annotations

import logging
import threading
import time

from .client import LabelStudioClient, LabelStudioError

logger = logging.getLogger("relaxml")

VERIFY_TTL = 300.0  # seconds a successful or failed access check is trusted


class ClientPool:
    """Clients keyed by (url, key), reused across requests. Thread-safe."""

    def __init__(self, url: str | None = None, api_key: str | None = None) -> None:
        self._url = url
        self._api_key = api_key
        self._clients: dict[tuple[str, str | None], LabelStudioClient] = {}
        self._checked: dict[tuple[str, str | None, int | None], tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, hostname: str | None, access_token: str | None) -> LabelStudioClient:
        """The client for a project, or `LabelStudioError` saying what to configure."""
        url = self._url or hostname
        if not url:
            raise LabelStudioError(
                "no Label Studio URL: set LABEL_STUDIO_URL (Label Studio sent no hostname)"
            )
        key = self._api_key or access_token
        with self._lock:
            client = self._clients.get((url, key))
            if client is None:
                client = self._clients[(url, key)] = LabelStudioClient(url, key)
            return client

    def known_problem(
        self, hostname: str | None, access_token: str | None, project_id: int | None
    ) -> tuple[bool, str | None]:
        """(whether the answer is known without I/O, the problem). Never blocks."""
        url = self._url or hostname
        if not url:
            return True, "no Label Studio URL: set LABEL_STUDIO_URL (Label Studio sent no hostname)"
        key = (url.rstrip("/") + "/", self._api_key or access_token or None, project_id)
        with self._lock:
            known = self._checked.get(key)
        if known is not None and time.monotonic() - known[0] < VERIFY_TTL:
            return True, known[1]
        return False, None

    def problem(
        self, hostname: str | None, access_token: str | None, project_id: int | None
    ) -> str | None:
        """Why the API cannot be used for this project (None when it can). Cached 5 minutes.

        Blocking: call it from a worker thread.
        """
        try:
            client = self.get(hostname, access_token)
        except LabelStudioError as exc:
            return str(exc)
        cache_key = (client.url, client.api_key, project_id)
        with self._lock:
            known = self._checked.get(cache_key)
        if known is not None and time.monotonic() - known[0] < VERIFY_TTL:
            return known[1]
        path = f"api/projects/{project_id}/" if project_id else "api/current-user/whoami"
        try:
            client.request("GET", path, timeout=5.0, retry=False).close()
            problem = None
        except LabelStudioError as exc:
            problem = str(exc)
            logger.warning("Label Studio API unavailable for background delivery: %s", exc)
        with self._lock:
            self._checked[cache_key] = (time.monotonic(), problem)
        return problem

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
