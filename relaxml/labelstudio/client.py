"""`LabelStudioClient`: relaxml's way back to Label Studio's REST API.

- Base URL: the `hostname` Label Studio sent in `/setup`, or `LABEL_STUDIO_URL`; sub-path
  deployments (`https://host/label-studio/`) work.
- Auth, both schemes: a legacy key is sent as `Token <key>`; a personal access token (a JWT
  refresh token) is exchanged at `/api/token/refresh/` for a 5-minute access token, sent as
  `Bearer`, refreshed before it expires and once more on a 401.
- Every call has a timeout. Connection errors, 429 and 5xx are retried with exponential
  backoff and jitter (honouring `Retry-After`); other answers are not.
- Credentials go to Label Studio's own origin only, never to another host or a redirect target.
  The origin is decided on the URL exactly as `requests` sends it (`origin`), after refusing
  URLs that parsers read differently (`check_url`).
- The key and every access token are remembered as secrets: no log line or answer shows them.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from requests.models import PreparedRequest

from .._redaction import redact, remember

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REFRESH_MARGIN = 30.0  # seconds before expiry to refresh an access token


class LabelStudioError(Exception):
    """A call to Label Studio failed; the message says what to fix (redacted: no secret)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(redact(message))
        self.status_code = status_code


def is_jwt(key: str) -> bool:
    """True when `key` looks like a JWT (a personal access token), not a legacy key."""
    parts = key.split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(_b64decode(parts[0]))
    except (ValueError, binascii.Error):
        return False
    return isinstance(header, dict) and "alg" in header


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim of a JWT (not verified: relaxml only schedules refreshes with it)."""
    try:
        claims = json.loads(_b64decode(token.split(".")[1]))
    except (ValueError, IndexError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, (int, float)) else None


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_AUTHORITY_BAD = re.compile(r"[\s@%\\]")


def check_url(url: str) -> None:
    """Refuse a URL that URL parsers could read differently (ValueError saying why).

    Refused: control characters, backslashes anywhere, and in the authority (host and port)
    whitespace, `@` (user info) or `%` (encoded separators). Parsers disagree on these, so the
    host relaxml checks could differ from the host a request goes to.
    """
    if _CONTROL.search(url):
        raise ValueError("a URL must not contain control characters")
    if "\\" in url:
        raise ValueError("a URL must not contain a backslash")
    scheme, sep, rest = url.partition("://")
    if sep and scheme.isascii() and scheme.isalpha():
        authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
        if _AUTHORITY_BAD.search(authority):
            raise ValueError(
                "a URL's host must not contain whitespace, '@' (user info) or '%' escapes"
            )


def origin(url: str) -> tuple[str, str]:
    """(scheme, `host:port`) of `url` exactly as `requests` would send it.

    The URL is prepared the way `requests` prepares it (urllib3's parser, IDNA hosts), then
    read the way its adapter reads the prepared URL to connect: one parser decides and sends.
    Raises ValueError for an ambiguous or invalid URL.
    """
    check_url(url)
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, None)
    except requests.RequestException as exc:
        raise ValueError(f"invalid URL: {type(exc).__name__}") from None
    parts = urlsplit(prepared.url or "")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or "@" in parts.netloc or not parts.hostname:
        raise ValueError("only http(s) URLs with a host and no user info are allowed")
    port = parts.port or {"http": 80, "https": 443}[scheme]
    return scheme, f"{parts.hostname.lower().rstrip('.')}:{port}"


class LabelStudioClient:
    """A client for one Label Studio (base URL) and one API key. Thread-safe."""

    def __init__(
        self,
        url: str,
        api_key: str | None,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 5.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Label Studio URL must start with http:// or https://, got {url!r}")
        self.url = url.rstrip("/") + "/"
        self._origin = origin(self.url)  # a ValueError for an ambiguous or invalid URL
        self.api_key = api_key or None
        remember(self.api_key)
        self.timeout = (connect_timeout, timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._session = session or requests.Session()
        self._sleep = sleep
        self._lock = threading.Lock()
        self._access: str | None = None
        self._access_expires = 0.0

    def __repr__(self) -> str:
        scheme = "none" if not self.api_key else "pat" if is_jwt(self.api_key) else "token"
        return f"LabelStudioClient({self.url!r}, auth={scheme})"

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def absolute(self, path_or_url: str) -> str:
        """An absolute URL: relative paths are joined to the base URL, sub-path included.

        A relative path never leads to another origin (`/http://x`, `//host` and the like are
        joined as paths, and checked); ambiguous URLs raise ValueError (see `check_url`).
        """
        check_url(path_or_url)
        try:
            scheme = urlsplit(path_or_url).scheme.lower()
        except ValueError:
            raise ValueError("invalid URL") from None
        if scheme in ("http", "https") and path_or_url[len(scheme) : len(scheme) + 3] == "://":
            return path_or_url
        joined = urljoin(self.url, "./" + path_or_url.lstrip("/"))
        if origin(joined) != self._origin:
            raise ValueError(f"{path_or_url!r} does not stay on Label Studio's origin")
        return joined

    def is_own(self, url: str) -> bool:
        """True when `url` points at this Label Studio's origin (where credentials may go).

        Raises ValueError for an ambiguous URL.
        """
        return origin(self.absolute(url)) == self._origin

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header for this client's key (refreshing a PAT's access token)."""
        if not self.api_key:
            return {}
        if not is_jwt(self.api_key):
            return {"Authorization": f"Token {self.api_key}"}
        with self._lock:
            if self._access is None or time.time() > self._access_expires - REFRESH_MARGIN:
                self._refresh()
            return {"Authorization": f"Bearer {self._access}"}

    def _refresh(self) -> None:
        response = self._send(
            "POST", self.absolute("api/token/refresh/"), json={"refresh": self.api_key}, auth=False
        )
        if response.status_code in (400, 401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} refused the personal access token "
                f"({response.status_code}): create a new one in Account & Settings and set "
                "LABEL_STUDIO_API_KEY",
                response.status_code,
            )
        self._check(response, "api/token/refresh/")
        try:
            body = response.json()
        except ValueError:
            body = None
        access = body.get("access") if isinstance(body, dict) else None
        if not isinstance(access, str):
            raise LabelStudioError(f"Label Studio at {self.url} sent no access token on refresh")
        remember(access)
        self._access = access
        self._access_expires = jwt_expiry(access) or time.time() + 240

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        stream: bool = False,
        timeout: float | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """Call Label Studio and return a 2xx response, or raise `LabelStudioError`.

        Redirects are not followed: a 3xx comes back as it is (media downloads follow them
        without credentials). A 401 with a personal access token refreshes it once.
        """
        url = self.absolute(path_or_url)
        if not self.is_own(url):
            raise ValueError(f"{url} is not on Label Studio's origin {self.url}")
        _check_local_files(url)
        attempts = self.retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                response = self._send(
                    method, url, json=json, params=params, stream=stream, timeout=timeout
                )
                if response.status_code == 401 and self.api_key and is_jwt(self.api_key):
                    with self._lock:
                        self._access = None
                    response.close()
                    response = self._send(
                        method, url, json=json, params=params, stream=stream, timeout=timeout
                    )
            except requests.RequestException as exc:
                if attempt + 1 >= attempts:
                    raise LabelStudioError(
                        f"cannot reach Label Studio at {self.url}: {type(exc).__name__}. "
                        "Check LABEL_STUDIO_URL (inside Docker, localhost is the container "
                        "itself)"
                    ) from None
                self._pause(attempt, None)
                continue
            if response.status_code in RETRY_STATUSES and attempt + 1 < attempts:
                response.close()
                self._pause(attempt, response.headers.get("Retry-After"))
                continue
            self._check(response, path_or_url)
            return response
        raise AssertionError("unreachable")

    def _send(
        self, method: str, url: str, *, auth: bool = True, timeout: float | None = None, **kw: Any
    ) -> requests.Response:
        headers = self.auth_headers() if auth else {}
        return self._session.request(
            method,
            url,
            headers=headers,
            timeout=(self.timeout[0], timeout) if timeout else self.timeout,
            allow_redirects=False,
            **kw,
        )

    def _pause(self, attempt: int, retry_after: str | None) -> None:
        delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.0)
        if retry_after and retry_after.isascii() and retry_after.isdigit():
            delay = max(delay, min(float(retry_after), self.max_backoff))
        self._sleep(delay)

    def _check(self, response: requests.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        detail = _detail(response)
        response.close()
        if status == 401:
            hint = (
                "set LABEL_STUDIO_API_KEY to a personal access token (Account & Settings), "
                "with LABEL_STUDIO_URL"
                if not self.api_key or not is_jwt(self.api_key)
                else "the personal access token was revoked or expired: create a new one"
            )
            raise LabelStudioError(
                f"Label Studio at {self.url} refused the API key (401): {hint}", status
            )
        if status == 403:
            raise LabelStudioError(
                f"Label Studio at {self.url} forbids {what} (403) for this user: use the key "
                "of a user with access to the project",
                status,
            )
        raise LabelStudioError(
            f"Label Studio at {self.url} answered {status} to {what}: {detail}", status
        )


def _check_local_files(url: str) -> None:
    """Refuse a `/data/local-files/` URL whose `d` is repeated or climbs out with `..`."""
    parts = urlsplit(url)
    if not parts.path.rstrip("/").endswith("/data/local-files"):
        return
    found = parse_qs(parts.query, keep_blank_values=True).get("d", [])
    if len(found) > 1 or any(".." in PurePosixPath(d).parts for d in found):
        raise ValueError("a local-files URL needs one 'd' parameter, without '..'")


def _detail(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason
    if isinstance(body, dict):
        for key in ("detail", "error", "validation_errors"):
            if key in body:
                return str(body[key])[:200]
    return str(body)[:200]
