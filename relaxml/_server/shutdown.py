"""`ShutdownMiddleware`: a request cut off by shutdown still gets a JSON answer.

On SIGTERM uvicorn stops accepting connections and lets requests in flight finish, for up to
`timeout_graceful_shutdown` seconds (10 with `relaxml serve`). Then it cancels them and, for a
request that has not answered yet, sends its own `text/plain` 500. This middleware answers such
a request with relaxml's JSON instead: a 503 `shutting_down` that tells Label Studio to retry.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import HTTPError
from .handlers import error_response

logger = logging.getLogger(__name__)


class ShutdownMiddleware:
    """Answers JSON 503 to a request cancelled before it answered (the shutdown deadline)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except asyncio.CancelledError:
            if started:
                raise  # half an answer is out: the server closes the connection
            logger.warning(
                "%s %s cut off by the shutdown deadline: answered 503",
                scope["method"],
                scope["path"],
            )
            error = HTTPError(
                503,
                "shutting_down",
                "the server is shutting down and stopped this request before it finished; retry it",
                headers={"Retry-After": "5", "Connection": "close"},
            )
            await error_response(error)(scope, receive, tracking_send)
            # The request task ends here, answered: nothing above it waits for the
            # cancellation, and re-raising it would only make the server log a traceback.
