"""Logging: one concise line per request, and no secret in any record at any level.

relaxml never logs bodies or headers. As a second line of defence, `RedactingFilter` scrubs
anything that looks like a credential (Authorization values, tokens, passwords, JWTs) and every
secret relaxml knows from every record and traceback that reaches relaxml's handler, and
escapes control characters so that no input can forge a log line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._metrics import Metrics
from .._redaction import REDACTED, escape, redact, redact_values

__all__ = ["REDACTED", "AccessLogMiddleware", "RedactingFilter", "configure_logging", "redact"]

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("relaxml.access")

HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Method label values of request metrics; any other method is counted as `OTHER`."""


class RedactingFilter(logging.Filter):
    """A handler filter that makes each record safe to write as one line.

    The message and traceback are redacted (`redaction.redact`: credential-looking values and
    every secret relaxml knows), and control characters (CR, LF, ANSI escapes) in the message
    are escaped so that no input can forge a log line; a traceback keeps its line breaks.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.name == "relaxml.access" and not record.exc_info:
            # built by relaxml from method, path, status and timing: no credential names
            clean = escape(redact_values(message))
        else:
            clean = escape(redact(message))
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = escape(redact(record.exc_text), keep_newlines=True)
        if record.stack_info:
            record.stack_info = escape(redact(record.stack_info), keep_newlines=True)
        return True


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record (relaxml's, uvicorn's, the model's) to one redacting handler.

    One line per record on `stream` (stderr by default). uvicorn's own access log is off:
    relaxml's `relaxml.access` logger writes one line per request instead.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(RedactingFilter())
    level = level.upper() if isinstance(level, str) else level
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("relaxml", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers = []
        log.setLevel(level)
        log.propagate = True
    logging.getLogger("uvicorn.access").disabled = True


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
