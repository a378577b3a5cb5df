"""Logging: one concise line per request, and no secret in any record at any level.

relaxml never logs bodies or headers. As a second line of defence, `RedactingFilter` scrubs
anything that looks like a credential (Authorization values, tokens, passwords, JWTs) from
every record and traceback that reaches relaxml's handler.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import Metrics

logger = logging.getLogger("relaxml")
access_logger = logging.getLogger("relaxml.access")

_KEYS = r"access_token|refresh_token|refresh|access|token|api_key|apikey|password|passwd|secret"
_PATTERNS = [
    # "Authorization: Basic abc", 'authorization': 'Token abc'
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+"),
    # Token 9f8e..., Bearer abc.def, Basic dXNlcjpwYXNz (a digit or +/= tells it from prose)
    re.compile(r"(?i)(\b(?:token|bearer|basic)\s+)(?=[\w.~+/=-]*[0-9+/=])[\w.~+/=-]{8,}"),
    # "password": "x", access_token=x, 'token': 'x'
    re.compile(rf"(?i)(['\"]?\b(?:{_KEYS})\b['\"]?\s*[:=]\s*)('[^']*'|\"[^\"]*\"|[^\s,&}}]+)"),
    # bare JWTs
    re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
]
REDACTED = "[redacted]"

# Every pattern above needs one of these words (or a JWT's "eyJ") in the text: a cheap first
# look that spares the four substitutions for the vast majority of records.
_TRIGGER = re.compile(rf"(?i)authorization|bearer|basic|{_KEYS}|eyJ")


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced by `[redacted]`."""
    if not _TRIGGER.search(text):
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "relaxml.access" and not record.exc_info:
            return True  # built by relaxml from method, path, status and timing only
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
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
                template = getattr(route, "path", "other")
                self.metrics.inc(
                    "relaxml_requests_total",
                    route=template,
                    method=scope["method"],
                    status=str(status),
                )
                self.metrics.observe("relaxml_request_duration_seconds", elapsed, route=template)
            if access_logger.isEnabledFor(logging.INFO):
                note = scope.get("relaxml.note")
                access_logger.info(
                    "%s %s %d %.1f ms%s",
                    scope["method"],
                    scope["path"],
                    status,
                    elapsed * 1000,
                    f" ({note})" if note else "",
                )
