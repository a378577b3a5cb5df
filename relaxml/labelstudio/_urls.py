"""Where a file reference from `task.data` is downloaded from; `MediaError`.

Pure functions, no I/O: `resolve_url` maps each shape Label Studio 1.23 writes into task data
to the URL to GET first; `local_files_d` and `check_relative` read and vet `/data/local-files/`
paths; `redact` makes URLs safe to print. `MediaFetcher` (media.py) does the fetching.
"""

from __future__ import annotations

import base64
from pathlib import PurePosixPath
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

from .._redaction import redact
from .client import LabelStudioClient, check_url

STORAGE_SCHEMES = ("s3", "gs", "azure-blob")
_PUBLIC_PARAMS = ("d", "fileuri")  # Label Studio's own query parameters: no secrets


class MediaError(Exception):
    """A file from task data could not be fetched; the message says what to fix.

    `url` is the URL or value that failed, without query strings that may hold secrets;
    `status_code` is the HTTP status when there was one.
    """

    def __init__(
        self, message: str, *, url: str | None = None, status_code: int | None = None
    ) -> None:
        super().__init__(redact(message))
        self.url = url
        self.status_code = status_code


def resolve_url(value: str, client: LabelStudioClient | None, task_id: int | None = None) -> str:
    """The URL to GET for `value` (before redirects). Raises `MediaError`.

    - `s3://`, `gs://`, `azure-blob://`: Label Studio's `tasks/{task_id}/resolve/?fileuri=…`.
    - `…/data/local-files/?d=…`, relative or absolute: rebuilt on `client`'s Label Studio from
      the one vetted `d` (other parameters are dropped; a second `d` is refused). Label Studio
      writes its `LABEL_STUDIO_HOST` into absolute ones, which may be unreachable from here
      (`localhost` inside Docker); that host is never contacted.
    - Other http(s) URLs: as they are.
    - `/…` paths: joined to Label Studio's URL, keeping a sub-path (`/label-studio/`) once.

    Values that URL parsers read differently (backslashes, control characters, user info or
    `%` escapes in the host) are refused: see `client.check_url`.
    """
    shown = redact_url(value)
    try:
        check_url(value)
        scheme = urlsplit(value).scheme.lower()
    except ValueError as exc:
        raise MediaError(f"refused {shown!r}: {exc}", url=shown) from None
    if scheme in STORAGE_SCHEMES:
        if task_id is None:
            raise MediaError(
                f"task_id is needed to resolve {scheme}:// URIs ({shown}): "
                "call path(value, task_id=task.id)",
                url=shown,
            )
        fileuri = base64.urlsafe_b64encode(value.encode()).decode()
        return _need(client, value).absolute(
            f"tasks/{int(task_id)}/resolve/?{urlencode({'fileuri': fileuri})}"
        )
    d = local_files_d(value)
    if d is not None and (client is not None or not scheme):
        check_relative(d, value)
        return _need(client, value).absolute(f"data/local-files/?{urlencode({'d': d})}")
    if scheme in ("http", "https"):
        return value
    if not scheme and value.startswith("/") and not value.startswith("//"):
        client = _need(client, value)
        prefix = urlsplit(client.url).path.rstrip("/")
        if prefix and (value == prefix or value.startswith(prefix + "/")):
            joined = urljoin(client.url, value)  # Label Studio already put its sub-path in
            if is_own(client, joined):
                return joined
        try:
            return client.absolute(value)
        except ValueError as exc:
            raise MediaError(f"refused {shown!r}: {exc}", url=shown) from None
    raise MediaError(
        f"cannot fetch {shown!r}: expected a Label Studio path (/data/…), an http(s) URL, "
        "or an s3://, gs:// or azure-blob:// URI",
        url=shown,
    )


def _need(client: LabelStudioClient | None, value: str) -> LabelStudioClient:
    if client is None:
        raise MediaError(
            f"{redact_url(value)} is served by Label Studio, but relaxml does not know where "
            "Label Studio is: set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY",
            url=redact_url(value),
        )
    return client


def local_files_d(value: str) -> str | None:
    """The `d` parameter of a `…/data/local-files/?d=…` value (URL-decoded), else None.

    Raises `MediaError` when `d` is given more than once (`?d=ok&d=../../etc/passwd`): servers
    differ on which one they read.
    """
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme and parts.scheme.lower() not in ("http", "https"):
        return None
    if not parts.path.rstrip("/").endswith("/data/local-files"):
        return None
    found = parse_qs(parts.query, keep_blank_values=True).get("d")
    if found and len(found) > 1:
        raise MediaError(
            f"refused {redact_url(value)}: the 'd' parameter is given {len(found)} times",
            url=redact_url(value),
        )
    return found[0] if found else None


def check_relative(d: str, value: str) -> None:
    """Refuse a local-files path that is empty, absolute, or climbs out with `..`."""
    path = PurePosixPath(d)
    if not d or path.is_absolute() or ".." in path.parts or "\x00" in d or "\\" in d:
        raise MediaError(
            f"refused {redact_url(value)}: d={d!r} must be a relative path inside "
            "LOCAL_FILES_DOCUMENT_ROOT, without '..'",
            url=redact_url(value),
        )


def suffix_of(value: str) -> str:
    """The file extension the value names (`.png`), from `d` for local files; may be empty."""
    d = local_files_d(value)
    try:
        path = d if d is not None else urlsplit(value).path
    except ValueError:
        return ""
    return PurePosixPath(path).suffix


def redact_url(url: str) -> str:
    """`url` without user info and with its query replaced by `…` (it may hold a signature).

    Label Studio's own `d=` and `fileuri=` parameters are kept: they are not secrets.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    query = parts.query
    if query and any(k not in _PUBLIC_PARAMS for k in parse_qs(query, keep_blank_values=True)):
        query = "…"
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def is_own(client: LabelStudioClient, url: str) -> bool:
    """`client.is_own(url)`, False for a URL with an invalid port."""
    try:
        return client.is_own(url)
    except ValueError:
        return False
