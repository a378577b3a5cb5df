"""`answer_cut_off`: a request cut off by shutdown still gets a JSON answer.

On SIGTERM uvicorn stops accepting connections and lets requests in flight finish, for up to
`timeout_graceful_shutdown` seconds (10 with `relaxml serve`). Then it cancels them and, for a
request that has not answered yet, sends its own `text/plain` 500. This middleware answers such
a request with relaxml's JSON instead: a 503 `shutting_down` that tells Label Studio to retry.
"""

from __future__ import annotations

import logging

from starlette.types import Receive, Scope, Send

from ..errors import HTTPError
from .handlers import error_response

logger = logging.getLogger(__name__)


async def answer_cut_off(scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a request that shutdown cancelled before it answered: a JSON 503 that tells
    Label Studio to retry (`AccessLogMiddleware`, the outermost of relaxml's, calls it)."""
    logger.warning(
        "%s %s cut off by the shutdown deadline: answered 503", scope["method"], scope["path"]
    )
    error = HTTPError(
        503,
        "shutting_down",
        "the server is shutting down and stopped this request before it finished; retry it",
        headers={"Retry-After": "5", "Connection": "close"},
    )
    await error_response(error)(scope, receive, send)
