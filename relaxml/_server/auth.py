"""Basic Auth over every route, compared in constant time.

Credentials are accepted encoded as UTF-8 (browsers, curl) or as latin-1 (Label Studio's own
client), so a non-ASCII password works with both. The password is remembered as a secret:
no log line or answer shows it.

Label Studio sends its Basic Auth credentials on `/health`, `/setup`, `/predict`, `/versions`
and the `START_TRAINING` webhook, but *not* on event webhooks (annotation created, project
updated, ...), which come from its separate webhook system. So `/webhook` without credentials
is let through, marked unauthenticated, and `Backend.webhook` decides by action and by the
`webhook_auth` setting (docs/auth.md).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from .._redaction import remember
from ..errors import HTTPError
from .handlers import error_response

AUTHENTICATED = "relaxml.authenticated"
"""The scope key that records whether the request carried valid credentials."""

_OPEN_PATHS = frozenset({"/webhook"})


class BasicAuthMiddleware:
    """Refuse requests without the right Basic Auth credentials with a JSON 401."""

    def __init__(self, app: ASGIApp, *, user: str, password: str) -> None:
        self.app = app
        expected = f"{user}:{password}"
        # Label Studio's client encodes credentials as latin-1, browsers and curl as UTF-8
        self._utf8 = expected.encode()
        try:
            self._latin1: bytes | None = expected.encode("latin-1")
        except UnicodeEncodeError:
            self._latin1 = None
        remember(password, pinned=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ok = self._check(scope)
        scope[AUTHENTICATED] = ok
        if ok or scope["path"] in _OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        error = HTTPError(
            401,
            "unauthorized",
            "missing or wrong Basic Auth credentials",
            headers={"WWW-Authenticate": 'Basic realm="relaxml"'},
        )
        await error_response(error)(scope, receive, send)

    def _check(self, scope: Scope) -> bool:
        header = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        scheme, _, encoded = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            supplied = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        utf8 = hmac.compare_digest(supplied, self._utf8)
        latin1 = hmac.compare_digest(supplied, self._latin1 or self._utf8)
        return utf8 | latin1
