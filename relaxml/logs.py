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

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("relaxml")
access_logger = logging.getLogger("relaxml.access")

_KEYS = r"access_token|refresh_token|refresh|access|token|api_key|apikey|password|passwd|secret"
_PATTERNS = [
    # "Authorization: Basic abc", 'authorization': 'Token abc'
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}\n]+"),
    # Token abc / Bearer abc / Basic abc
    re.compile(r"(?i)(\b(?:token|bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"),
    # "password": "x", access_token=x, 'token': 'x'
    re.compile(rf"(?i)(['\"]?\b(?:{_KEYS})\b['\"]?\s*[:=]\s*)('[^']*'|\"[^\"]*\"|[^\s,&}}]+)"),
    # bare JWTs
    re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
]
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """`text` with anything that looks like a credential replaced by `[redacted]`."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts each record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def configure_logging(level: str | int = "INFO") -> None:
    """Send relaxml's and uvicorn's logs to stderr, one line each, through the redactor."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(RedactingFilter())
    for name in ("relaxml", "uvicorn", "uvicorn.error"):
        log = logging.getLogger(name)
        log.handlers = [handler] if name in ("relaxml", "uvicorn") else []
        log.setLevel(level.upper() if isinstance(level, str) else level)
        log.propagate = name == "uvicorn.error"
    logging.getLogger("uvicorn.access").disabled = True


class AccessLogMiddleware:
    """Log `METHOD /path STATUS duration` for every request; never the query, headers or body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            if access_logger.isEnabledFor(logging.INFO):
                note = scope.get("relaxml.note")
                access_logger.info(
                    "%s %s %d %.1f ms%s",
                    scope["method"],
                    scope["path"],
                    status,
                    (time.perf_counter() - start) * 1000,
                    f" ({note})" if note else "",
                )
