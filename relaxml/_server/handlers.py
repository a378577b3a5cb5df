"""Every failure as a JSON response: `error_response` and the app's exception handlers.

A `Failure` (errors.py) answers with the status of its code (`STATUS`), an `HTTPError` with its
own status and headers; Starlette's own errors (404, 405) get relaxml's codes; anything
unexpected is logged in full and answered with a short 500, no traceback on the wire.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import CODES, Failure, HTTPError, describe

logger = logging.getLogger(__name__)


STATUS = {code: status for status, code in CODES.items()} | {
    "model_error": 500,
    "model_output": 500,
}
"""The HTTP status of each failure code (`HTTPError`s carry their own)."""


def error_response(error: Failure) -> JSONResponse:
    """`error` as a JSON response with its status (and headers, for an `HTTPError`)."""
    if isinstance(error, HTTPError):
        return JSONResponse(error.to_dict(), status_code=error.status_code, headers=error.headers)
    return JSONResponse(error.to_dict(), status_code=STATUS.get(error.code, 500))


async def _on_failure(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Failure)
    return error_response(exc)


async def _on_starlette_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = CODES.get(exc.status_code, "http_error")
    if exc.status_code == 404:
        detail = f"no route {request.url.path}"
    elif exc.status_code == 405:
        detail = f"method {request.method} is not allowed on {request.url.path}"
    else:
        detail = str(exc.detail)
    return error_response(HTTPError(exc.status_code, code, detail, headers=exc.headers))


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(HTTPError(500, "internal_error", describe(exc)))


def exception_handlers() -> dict[Any, Any]:
    """Starlette exception handlers that answer every failure with JSON."""
    return {
        Failure: _on_failure,
        StarletteHTTPException: _on_starlette_error,
        Exception: _on_unexpected,
    }
