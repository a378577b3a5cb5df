"""Logging: one handler for every record (relaxml's, uvicorn's, the model's), and no secret in
any of them at any level.

relaxml never logs bodies or headers. As a second line of defence, `RedactingFilter` scrubs
anything that looks like a credential (Authorization values, tokens, passwords, JWTs) and every
secret relaxml knows from every record and traceback that reaches relaxml's handler, and
escapes control characters so that no input can forge a log line. `relaxml serve` calls
`configure_logging`; an app that embeds `create_app` calls it, or adds `RedactingFilter` to its
own handlers.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from ._redaction import escape, redact, redact_values, remember

__all__ = ["RedactingFilter", "configure_logging", "remember"]


class RedactingFilter(logging.Filter):
    """A handler filter that makes each record safe to write as one line.

    The message and traceback are redacted (`_redaction.redact`: credential-looking values and
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


class _LineFormatter(logging.Formatter):
    """`HH:MM:SS level name: message`; the time text is made once a second, not per record."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt, "%H:%M:%S")
        self._last = (-1, "")  # (second, its text), replaced whole: safe across threads

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        second = int(record.created)
        last = self._last
        if last[0] != second:
            last = self._last = (second, super().formatTime(record, datefmt))
        return last[1]


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record (relaxml's, uvicorn's, the model's) to one redacting handler.

    One line per record on `stream` (stderr by default). uvicorn's own access log is off:
    relaxml's `relaxml.access` logger writes one line per request instead.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_LineFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
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
