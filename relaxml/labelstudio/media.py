"""`MediaFetcher`: turn a file reference from `task.data` into a local file.

Every shape Label Studio 1.23 puts in task data is handled (see docs/media.md):

- `/data/upload/…` (relative to Label Studio): downloaded from Label Studio, with credentials.
- `/data/local-files/?d=…` (relative or absolute): read straight from disk under
  `local_files_root` when the file is there, else downloaded from Label Studio.
- `s3://`, `gs://`, `azure-blob://`: resolved through `/tasks/{id}/resolve/?fileuri=…`, which
  either proxies the bytes or redirects (303) to a presigned URL, followed without credentials.
- plain `http(s)://`: downloaded as is, without credentials unless it is Label Studio's own.

Credentials go only to Label Studio's origin: once a redirect leaves it, none are sent again.
Downloads stream to disk under a size limit, with timeouts, into a content-addressed cache.
Each download also has an overall deadline: a server that trickles bytes slowly enough to
never trip the read timeout is cut off when it is reached.
"""

from __future__ import annotations

import hashlib
import mimetypes
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from urllib.parse import urljoin, urlsplit

import requests

from ._cache import BlobCache
from ._urls import (
    STORAGE_SCHEMES,
    MediaError,
    check_relative,
    is_own,
    local_files_d,
    redact_url,
    resolve_url,
    suffix_of,
)
from .client import LabelStudioClient, LabelStudioError

__all__ = ["MediaError", "MediaFetcher"]

MiB = 1024 * 1024
REDIRECTS = frozenset({301, 302, 303, 307, 308})
CHUNK = 256 * 1024


class _Flight:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class MediaFetcher:
    """Fetches the files task data points to, caching downloads on disk. Thread-safe.

    `client` is Label Studio (None: only plain URLs and files under `local_files_root` work).
    `max_bytes` limits each download; `cache_bytes` caps the cache in `cache_dir`. `timeout`
    and `connect_timeout` (seconds) bound each connection attempt and each wait for data;
    `deadline` (seconds) bounds a whole download, redirects included.
    """

    def __init__(
        self,
        client: LabelStudioClient | None,
        cache_dir: Path,
        *,
        max_bytes: int = 512 * MiB,
        cache_bytes: int = 2048 * MiB,
        local_files_root: Path | None = None,
        timeout: float = 60.0,
        connect_timeout: float = 10.0,
        max_redirects: int = 5,
        deadline: float = 300.0,
    ) -> None:
        self.client = client
        self.max_bytes = max_bytes
        self.local_files_root = Path(local_files_root) if local_files_root else None
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_redirects = max_redirects
        self.deadline = deadline
        self.cache = BlobCache(Path(cache_dir), cache_bytes)
        self._session = requests.Session()  # third-party and presigned URLs: no credentials
        self._guard = threading.Lock()
        self._flights: dict[str, _Flight] = {}

    def __enter__(self) -> MediaFetcher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close this fetcher's connections (not the client's)."""
        self._session.close()

    def path(self, value: str, task_id: int | None = None) -> Path:
        """A local file with the content `value` (from `task.data`) points to.

        Files under `local_files_root` are returned in place; anything else is downloaded once
        into the cache. `task_id` is required for `s3://`, `gs://` and `azure-blob://` URIs.
        Raises `MediaError`.
        """
        value = value.strip()
        d = local_files_d(value)
        if d is not None:
            check_relative(d, value)
            if self.local_files_root is None and self.client is None:
                raise MediaError(
                    f"cannot read {redact_url(value)}: set LOCAL_FILES_DOCUMENT_ROOT to read it "
                    "from disk, or LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY to download it",
                    url=redact_url(value),
                )
            on_disk = self._from_disk(d, value) if self.local_files_root else None
            if on_disk is not None:
                return on_disk
        url = self.resolve_url(value, task_id)
        key = f"{self.client.url if self.client else ''}\n{value}"
        with self._single_flight(key):
            cached = self.cache.lookup(key)
            if cached is not None:
                return cached
            ends = time.monotonic() + self.deadline
            response = self._open(url, value, ends)
            try:
                with _Watchdog(response, ends) as watchdog:
                    return self._save(response, key, suffix_of(value), value, watchdog)
            finally:
                response.close()

    def resolve_url(self, value: str, task_id: int | None = None) -> str:
        """The URL `path` downloads `value` from (before redirects). Raises `MediaError`."""
        return resolve_url(value.strip(), self.client, task_id)

    def _from_disk(self, d: str, value: str) -> Path | None:
        assert self.local_files_root is not None
        root = self.local_files_root.resolve()
        candidate = (root / d).resolve()
        if not candidate.is_relative_to(root):
            raise MediaError(
                f"refused {redact_url(value)}: it leads outside LOCAL_FILES_DOCUMENT_ROOT ({root})",
                url=redact_url(value),
            )
        if candidate.is_file():
            return candidate
        if self.client is None:
            raise MediaError(
                f"{d!r} is not a file under LOCAL_FILES_DOCUMENT_ROOT ({root}), and relaxml "
                "cannot ask Label Studio for it: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY, "
                "or LOCAL_FILES_DOCUMENT_ROOT to the directory Label Studio serves",
                url=redact_url(value),
            )
        return None

    @contextmanager
    def _single_flight(self, key: str) -> Iterator[None]:
        """One download per key at a time: the second caller then finds it in the cache."""
        with self._guard:
            flight = self._flights.setdefault(key, _Flight())
            flight.users += 1
        try:
            with flight.lock:
                yield
        finally:
            with self._guard:
                flight.users -= 1
                if flight.users == 0:
                    del self._flights[key]

    def _open(self, url: str, value: str, ends: float) -> requests.Response:
        """GET `url`, following redirects; credentials only while on Label Studio's origin."""
        client = self.client
        credentials = client is not None and is_own(client, url)
        for _ in range(self.max_redirects + 1):
            if time.monotonic() > ends:
                raise self._too_slow(value, url)
            if credentials and client is not None and is_own(client, url):
                response = self._get_from_label_studio(client, url, value)
            else:
                credentials = False
                response = self._get_elsewhere(url, value)
            if response.status_code in REDIRECTS:
                location = response.headers.get("Location")
                response.close()
                if not location:
                    raise MediaError(f"{redact_url(url)} redirected nowhere", url=redact_url(url))
                url = urljoin(url, location)
                if urlsplit(url).scheme not in ("http", "https"):
                    raise MediaError(f"{redact_url(url)} is not http(s)", url=redact_url(url))
                continue
            if response.status_code >= 300:
                response.close()
                raise self._refused(url, value, response.status_code)
            return response
        raise MediaError(
            f"too many redirects (over {self.max_redirects}) fetching {redact_url(value)}",
            url=redact_url(url),
        )

    def _get_from_label_studio(
        self, client: LabelStudioClient, url: str, value: str
    ) -> requests.Response:
        try:
            return client.request("GET", url, stream=True, timeout=self.timeout)
        except LabelStudioError as exc:
            hint = ""
            if exc.status_code == 404 and urlsplit(value).scheme.lower() in STORAGE_SCHEMES:
                hint = " (no cloud storage of the task's project covers this URI?)"
            elif exc.status_code == 404 and local_files_d(value) is not None:
                hint = " (is the file inside a Local Files storage of the project?)"
            elif exc.status_code == 403 and local_files_d(value) is not None:
                hint = " (Label Studio needs LOCAL_FILES_SERVING_ENABLED=true)"
            raise MediaError(
                f"cannot download {redact_url(value)}: {exc}{hint}",
                url=redact_url(url),
                status_code=exc.status_code,
            ) from exc

    def _get_elsewhere(self, url: str, value: str) -> requests.Response:
        try:
            return self._session.get(
                url,
                stream=True,
                timeout=(self.connect_timeout, self.timeout),
                allow_redirects=False,
            )
        except requests.Timeout:
            raise MediaError(
                f"timed out fetching {redact_url(value)} from {redact_url(url)} "
                f"(connect {self.connect_timeout:g} s, read {self.timeout:g} s)",
                url=redact_url(url),
            ) from None
        except requests.RequestException as exc:
            raise MediaError(
                f"cannot fetch {redact_url(value)} from {redact_url(url)}: {type(exc).__name__}",
                url=redact_url(url),
            ) from None

    def _refused(self, url: str, value: str, status: int) -> MediaError:
        message = f"{redact_url(url)} answered {status} for {redact_url(value)}"
        if status in (401, 403) and self.client is not None:
            message += (
                "; no credentials are sent once a redirect has left Label Studio"
                if is_own(self.client, url)
                else f"; credentials are only sent to Label Studio at {self.client.url}: if "
                "this URL is Label Studio, set LABEL_STUDIO_URL to the address it is reached at"
            )
            if urlsplit(value).scheme.lower() in STORAGE_SCHEMES:
                message += " (or the presigned URL expired: raise the storage's presign_ttl)"
        return MediaError(message, url=redact_url(url), status_code=status)

    def _save(
        self, response: requests.Response, key: str, suffix: str, value: str, watchdog: _Watchdog
    ) -> Path:
        length = response.headers.get("Content-Length", "")
        if length.isascii() and length.isdigit() and int(length) > self.max_bytes:
            raise self._too_big(value, int(length))
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        if not suffix and content_type:
            suffix = mimetypes.guess_extension(content_type) or ""
        try:
            file, temporary = self.cache.temporary()
        except OSError as exc:
            raise self._cache_error(value, exc) from exc
        digest = hashlib.sha256()
        total = 0
        stored: Path | None = None
        try:
            with file:
                for chunk in response.iter_content(CHUNK):
                    total += len(chunk)
                    if total > self.max_bytes:
                        raise self._too_big(value, None)
                    if watchdog.expired():
                        raise self._too_slow(value, response.url)
                    digest.update(chunk)
                    file.write(chunk)
            if watchdog.expired():  # the cut may look like the end of the body
                raise self._too_slow(value, response.url)
            stored = self.cache.store(key, temporary, digest.hexdigest(), suffix)
            return stored
        except requests.RequestException as exc:
            if watchdog.expired():
                raise self._too_slow(value, response.url) from None
            raise MediaError(
                f"download of {redact_url(value)} broke off after {total} bytes: "
                f"{type(exc).__name__} (read timeout {self.timeout:g} s)",
                url=redact_url(response.url),
            ) from None
        except OSError as exc:
            raise self._cache_error(value, exc) from exc
        finally:
            if stored is None:
                temporary.unlink(missing_ok=True)

    def _too_slow(self, value: str, url: str) -> MediaError:
        return MediaError(
            f"download of {redact_url(value)} took longer than the {self.deadline:g} s deadline "
            "(set RELAXML_MEDIA_DEADLINE to raise it)",
            url=redact_url(url),
        )

    def _cache_error(self, value: str, exc: OSError) -> MediaError:
        return MediaError(
            f"cannot write {redact_url(value)} into the cache at {self.cache.directory}: {exc}",
            url=redact_url(value),
        )

    def _too_big(self, value: str, size: int | None) -> MediaError:
        found = f" ({human_size(size)})" if size is not None else ""
        return MediaError(
            f"{redact_url(value)} is larger than the {human_size(self.max_bytes)} limit{found}: "
            "raise max_bytes to fetch it",
            url=redact_url(value),
        )


class _Watchdog:
    """Cuts a streaming response's connection when the deadline `ends` (monotonic) passes.

    A blocked read then returns at once; `expired()` tells the reader why its data stopped.
    """

    def __init__(self, response: requests.Response, ends: float) -> None:
        self._response = response
        self._ends = ends
        self._fired = threading.Event()
        self._timer = threading.Timer(max(0.0, ends - time.monotonic()), self._cut)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self._fired.is_set() or time.monotonic() > self._ends

    def _cut(self) -> None:
        self._fired.set()
        sock = _socket_of(self._response)
        if sock is not None:
            with suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)


def _socket_of(response: requests.Response) -> socket.socket | None:
    """The socket a streaming response reads from, if it can be found."""
    raw = response.raw
    connection = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(connection, "sock", None)
    if sock is None:  # through http.client's file object
        fp = getattr(getattr(raw, "_fp", None), "fp", None)
        sock = getattr(getattr(fp, "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def human_size(size: int) -> str:
    """`size` bytes as a short text: `512 MiB`, `4.88 KiB`, `100 bytes`."""
    for unit, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if size >= unit:
            return f"{size / unit:.3g} {name}"
    return f"{size} bytes"
