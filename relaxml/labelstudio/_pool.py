"""`ClientPool`: one `LabelStudioClient` per Label Studio URL and key, and whether it works;
`MediaPool`: one `MediaFetcher` per Label Studio URL and key, sharing one file cache.

The URL is `LABEL_STUDIO_URL` when set, else the `hostname` of the project's `/setup`; the key
is `LABEL_STUDIO_API_KEY` when set, else the project's `access_token` from `/setup`. A
configured key needs a configured URL (`Settings` refuses one without the other), so it only
ever goes to that URL's origin; a token from `/setup` goes to the hostname of the same call.
Clients and access checks are kept for the most recently used (url, key) pairs only.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .._lru import LRU
from .._redaction import remember
from .client import LabelStudioClient, LabelStudioError
from .media import MediaFetcher

logger = logging.getLogger(__name__)

VERIFY_TTL = 300.0  # seconds a successful or failed access check is trusted
MAX_CLIENTS = 64  # clients kept (each holds a connection pool); the least recently used close
MAX_CHECKS = 1024  # access check results kept
MAX_FETCHERS = 32  # media fetchers kept (one per Label Studio URL and token), least recent out

_NO_URL = "no Label Studio URL: set LABEL_STUDIO_URL (Label Studio sent no hostname)"


class ClientPool:
    """Clients keyed by (url, key), reused across requests, bounded by count. Thread-safe."""

    def __init__(
        self,
        url: str | None = None,
        api_key: str | None = None,
        *,
        max_clients: int = MAX_CLIENTS,
        max_checks: int = MAX_CHECKS,
    ) -> None:
        if api_key and not url:
            raise ValueError(
                "LABEL_STUDIO_API_KEY needs LABEL_STUDIO_URL: the key only goes to the "
                "configured Label Studio"
            )
        remember(api_key, pinned=True)
        self._url = url
        self._api_key = api_key
        self._clients: LRU[tuple[str, str | None], LabelStudioClient] = LRU(max_clients)
        self._checked: LRU[tuple[str, str | None, int | None], tuple[float, str | None]]
        self._checked = LRU(max_checks)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, hostname: str | None, access_token: str | None) -> LabelStudioClient:
        """The client for a project, or `LabelStudioError` saying what to configure.

        `hostname` and `access_token` must come from the same `/setup` call: the token is sent
        to that hostname (or to `LABEL_STUDIO_URL` when it is set).
        """
        url = self._url or hostname
        if not url:
            raise LabelStudioError(_NO_URL)
        key = self._api_key or access_token or None
        with self._lock:
            client = self._clients.get((url, key))
            if client is not None:
                return client
            try:
                client = LabelStudioClient(url, key)
            except ValueError as exc:
                shown = repr(url) if "@" not in url else "(a URL with user info)"
                raise LabelStudioError(
                    f"cannot use Label Studio URL {shown}: {exc} (set LABEL_STUDIO_URL, or check "
                    "the project's Label Studio host)"
                ) from None
            evicted = self._clients.put((url, key), client)
        for old in evicted:
            old.close()
        return client

    def find(self, hostname: str | None, access_token: str | None) -> LabelStudioClient | None:
        """`get`, or None when there is no usable Label Studio URL (the reason is logged at
        debug level: `problem` reports it where a user sees it)."""
        try:
            return self.get(hostname, access_token)
        except LabelStudioError as exc:
            logger.debug("no Label Studio client: %s", exc)
            return None

    def known_problem(
        self, hostname: str | None, access_token: str | None, project_id: int | None
    ) -> tuple[bool, str | None]:
        """(whether the answer is known without I/O, the problem). Never blocks."""
        url = self._url or hostname
        if not url:
            return True, _NO_URL
        key = (url.rstrip("/") + "/", self._api_key or access_token or None, project_id)
        with self._lock:
            known = self._checked.get(key, touch=False)
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
            known = self._checked.get(cache_key, touch=False)
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
            self._checked.put(cache_key, (time.monotonic(), problem))
        return problem

    def close(self) -> None:
        """Close every client's connections."""
        with self._lock:
            clients = self._clients.clear()
        for client in clients:
            client.close()


class MediaPool:
    """The media fetchers of one backend: one per (hostname, access token) of a `/setup`, each
    with its client from `clients`, all writing to one cache directory. At most `size` are
    kept; the least recently used one is closed first (a download still using it reconnects).
    """

    def __init__(
        self,
        clients: ClientPool,
        directory: Path,
        *,
        max_bytes: int,
        cache_bytes: int,
        local_files_root: Path | None,
        deadline: float,
        size: int = MAX_FETCHERS,
    ) -> None:
        self.clients = clients
        self.directory = directory
        self.max_bytes = max_bytes
        self.cache_bytes = cache_bytes
        self.local_files_root = local_files_root
        self.deadline = deadline
        self._fetchers: LRU[tuple[str | None, str | None], MediaFetcher] = LRU(size)
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._fetchers)

    def get(self, hostname: str | None, access_token: str | None) -> MediaFetcher:
        """The fetcher for a project's Label Studio; without a usable Label Studio URL it
        still reads local files and plain URLs."""
        key = (hostname, access_token)
        with self._lock:
            fetcher = self._fetchers.get(key)
            if fetcher is not None:
                return fetcher
        client = self.clients.find(hostname, access_token)
        fetcher = MediaFetcher(
            client,
            self.directory,
            max_bytes=self.max_bytes,
            cache_bytes=self.cache_bytes,
            local_files_root=self.local_files_root,
            deadline=self.deadline,
        )
        with self._lock:
            raced = self._fetchers.get(key)
            evicted = [fetcher] if raced else self._fetchers.put(key, fetcher)
        for old in evicted:
            old.close()
        return raced or fetcher

    def close(self) -> None:
        """Close every fetcher's connections."""
        with self._lock:
            fetchers = self._fetchers.clear()
        for fetcher in fetchers:
            fetcher.close()
