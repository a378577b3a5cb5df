"""The error types that become JSON answers (the server's `handlers.py` turns them into
responses and decides their HTTP status).

Every answer relaxml gives is JSON, errors included: `{"error": <code>, "detail": <message>}`,
plus `"field"` when one field of the request is at fault. No traceback ever reaches the wire;
unexpected exceptions are logged in full and answered with a short 500. Every detail is
redacted as log lines are (`_redaction.redact`): no secret relaxml knows, and nothing that looks
like a credential, reaches an answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._redaction import redact

CODES = {  # the error code of each status relaxml answers with
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    422: "invalid_field",
    503: "overloaded",
}


class Failure(Exception):
    """A failure relaxml answers as JSON: a machine-readable `code`, a `detail` (redacted) and
    the request `field` at fault, if one is. The server decides the HTTP status from the code;
    the same failure in a background job is recorded with its detail."""

    def __init__(self, code: str, detail: str, *, field: str | None = None) -> None:
        detail = redact(detail)
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this failure."""
        body: dict[str, Any] = {"error": self.code, "detail": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return body


class HTTPError(Failure):
    """A failure with its own HTTP status (and headers): raise it from a model to answer that
    status, e.g. `HTTPError(404, "not_found", "no such image")`."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(code, detail, field=field)
        self.status_code = status_code
        self.headers = dict(headers or {})


class BadRequest(Failure):
    """A malformed request: invalid JSON (`bad_request`), or a field missing or of a wrong
    type (`invalid_field`, naming the field)."""

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__("bad_request" if field is None else "invalid_field", detail, field=field)


class ModelError(Failure):
    """The user's model raised. The message is short; the traceback goes to the log only."""

    def __init__(self, detail: str) -> None:
        super().__init__("model_error", detail)


class ModelOutputError(Failure):
    """The user's model returned something Label Studio cannot read."""

    def __init__(self, detail: str) -> None:
        super().__init__("model_output", detail)


def describe(exc: BaseException, limit: int = 300) -> str:
    """A one-line `Type: message` summary of an exception, redacted, cut to `limit` characters."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
