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
import time
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


LINE_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _LineFormatter(logging.Formatter):
    """`HH:MM:SS level name: message`; the time text is made once a second, not per record."""

    def __init__(self, fmt: str) -> None:
        super().__init__(fmt, "%H:%M:%S")
        self._last = (-1, "")  # (second, its text), replaced whole: safe across threads

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return self.time_text(record.created)

    def time_text(self, created: float) -> str:
        """The time of a record made at `created` (seconds since the epoch), as `HH:MM:SS`."""
        second = int(created)
        last = self._last
        if last[0] != second:
            stamp = time.strftime(self.datefmt or "%H:%M:%S", self.converter(created))
            last = self._last = (second, stamp)
        return last[1]


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """relaxml's handler: `RedactingFilter` and `_LineFormatter` on a stream, and a short way
    to write an access line (`write_line`) that makes the same text without a `LogRecord`."""

    formatter: _LineFormatter

    def write_line(self, name: str, message: str) -> None:
        """Write an INFO line of logger `name` exactly as a record of `message` would be
        (redacted and escaped as `RedactingFilter` treats a `relaxml.access` record)."""
        created = time.time()
        line = f"{self.formatter.time_text(created)} INFO    {name}: "
        line += escape(redact_values(message))
        with self.lock:  # type: ignore[union-attr]
            try:
                self.stream.write(line + self.terminator)
                self.stream.flush()
            except Exception:  # as `emit` does: a broken stream never breaks the request
                self.handleError(logging.makeLogRecord({"name": name, "msg": message}))


def plain_handler(logger: logging.Logger) -> _Handler | None:
    """relaxml's handler, when it alone would write `logger`'s INFO records as they are: no
    handler or filter of the logger's own or of its parents' (beside relaxml's on the root),
    INFO enabled. Otherwise None: the caller then makes a record, for whatever is configured."""
    if not logger.isEnabledFor(logging.INFO):
        return None
    node: logging.Logger | None = logger
    while node is not None and node.parent is not None:  # up to, not including, the root
        if node.handlers or node.filters or not node.propagate or node.disabled:
            return None
        node = node.parent
    root = logging.root
    handlers = root.handlers
    if root.filters or len(handlers) != 1 or type(handlers[0]) is not _Handler:
        return None
    handler = handlers[0]
    if handler.level > logging.INFO or [type(f) for f in handler.filters] != [RedactingFilter]:
        return None
    formatter = handler.formatter
    if type(formatter) is not _LineFormatter or formatter._fmt != LINE_FORMAT:
        return None
    return handler


def configure_logging(level: str | int = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record (relaxml's, uvicorn's, the model's) to one redacting handler.

    One line per record on `stream` (stderr by default). uvicorn's own access log is off:
    relaxml's `relaxml.access` logger writes one line per request instead.
    """
    handler = _Handler(stream or sys.stderr)
    handler.setFormatter(_LineFormatter(LINE_FORMAT))
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
