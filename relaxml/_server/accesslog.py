"""`AccessLogMiddleware`: one concise line per request (`METHOD /path STATUS duration`), never
the query, headers or body, and the request metrics; as the outermost of relaxml's middleware,
it also answers a request cut off by shutdown (`shutdown.answer_cut_off`)."""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._metrics import Labels, Metrics, series_key
from .._redaction import escape
from ..logs import plain_handler
from .shutdown import answer_cut_off

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
        # label sets by (route, method, status), made once; bounded by the routes' templates,
        # the methods and the statuses (an unknown route counts as "other")
        self._labels: dict[tuple[str, str, int], tuple[Labels, Labels]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0  # no answer started yet

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except asyncio.CancelledError:
            if status:
                raise  # half an answer is out: the server closes the connection
            await answer_cut_off(scope, receive, send_with_status)
            # The request task ends here, answered: nothing above it waits for the
            # cancellation, and re-raising it would only make the server log a traceback.
        finally:
            status = status or 500
            elapsed = time.perf_counter() - start
            method = scope["method"]
            if self.metrics is not None:
                route = scope.get("route")
                template = getattr(route, "path", None)
                if not isinstance(template, str):
                    template = "other"
                known = method if method in HTTP_METHODS else "OTHER"
                key = (template, known, status)
                labels = self._labels.get(key)
                if labels is None:
                    labels = self._labels[key] = _request_labels(template, known, status)
                self.metrics.inc_series("relaxml_requests_total", labels[0])
                self.metrics.observe_series("relaxml_request_duration_seconds", elapsed, labels[1])
            if access_logger.isEnabledFor(logging.INFO):
                note = scope.get("relaxml.note")
                line = (  # escaped here too, for handlers other than relaxml's
                    f"{escape(method)} {escape(scope['path'])} {status} {elapsed * 1000:.1f} ms"
                    f"{f' ({escape(note)})' if note else ''}"
                )
                handler = plain_handler(access_logger)
                if handler is not None:  # the same text, without a LogRecord
                    handler.write_line(access_logger.name, line)
                else:  # `handle` a made record: `info` would first walk the stack for the caller
                    access_logger.handle(
                        access_logger.makeRecord(
                            access_logger.name, logging.INFO, __file__, 0, line, (), None
                        )
                    )


def _request_labels(template: str, method: str, status: int) -> tuple[Labels, Labels]:
    """The label sets of one request's counter and latency series."""
    counted = {"route": template, "method": method, "status": str(int(status))}
    return series_key(counted), series_key({"route": template})
