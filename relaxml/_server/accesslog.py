"""`AccessLogMiddleware`: one concise line per request (`METHOD /path STATUS duration`), never
the query, headers or body, and the request metrics."""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._metrics import Metrics
from .._redaction import escape

access_logger = logging.getLogger("relaxml.access")

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Method label values of request metrics; any other method is counted as `OTHER`."""


class AccessLogMiddleware:
    """Log `METHOD /path STATUS duration` for every request; never the query, headers or body.

    With `metrics`, also count requests and record latencies by route template.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - start
            if self.metrics is not None:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if not isinstance(template, str):
                    template = "other"
                method = scope["method"]
                self.metrics.inc(
                    "relaxml_requests_total",
                    route=template,
                    method=method if method in HTTP_METHODS else "OTHER",
                    status=str(int(status)),
                )
                self.metrics.observe("relaxml_request_duration_seconds", elapsed, route=template)
            if access_logger.isEnabledFor(logging.INFO):
                note = scope.get("relaxml.note")
                access_logger.info(  # escaped here too, for handlers other than relaxml's
                    "%s %s %d %.1f ms%s",
                    escape(scope["method"]),
                    escape(scope["path"]),
                    status,
                    elapsed * 1000,
                    f" ({escape(note)})" if note else "",
                )
