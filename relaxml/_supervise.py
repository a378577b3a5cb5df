"""`Supervisor`: the one guard every background loop and task of a backend runs under.

A step that raises is logged (at most once a minute per loop and error, with the traceback the
first time), the loop backs off (1 s, doubling up to 60 s) and goes on. Two kinds of failure
mean the loop cannot go on, and mark the backend DOWN (`/health` answers 503 with the reason):

- the data directory is broken: its database is corrupt or unreadable, or it became
  unwritable (`sqlite3.DatabaseError` other than a busy/locked database, `PermissionError`, a
  read-only file system);
- the same error (type and message) `MAX_FAILURES` times in a row in one loop.

Going DOWN calls `on_fatal`; `relaxml serve` uses it to shut the process down gracefully and
exit with `FATAL_EXIT_CODE`, so that a supervisor (systemd, Docker, Kubernetes, uvicorn's worker
manager with `--workers N`) restarts it.
"""

from __future__ import annotations

import errno
import logging
import math
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._throttle import LogThrottle
from .errors import describe

logger = logging.getLogger(__name__)

MAX_FAILURES = 5
"""The same error this many times in a row in one loop: the loop cannot go on."""

FATAL_EXIT_CODE = 70
"""The exit status of a process that stopped because a background loop could not go on."""
STARTUP_FAILED = 3
"""The exit status of a model that fails to start (`__init__` or `warmup` raises), as uvicorn's."""

Step = Callable[[], Awaitable[bool]]
"""One round of a loop: True when it did work (run again at once), False to idle."""


def is_fatal(exc: BaseException) -> bool:
    """True for errors that retrying cannot fix: a corrupt database, an unwritable directory."""
    if isinstance(exc, sqlite3.DatabaseError):
        message = str(exc).lower()
        return not ("locked" in message or "busy" in message)
    if isinstance(exc, PermissionError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.EROFS


class Supervisor:
    """Runs loops and one-shot tasks so that no exception ends them silently."""

    def __init__(
        self,
        *,
        on_fatal: Callable[[str], None] | None = None,
        max_failures: int = MAX_FAILURES,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        log_every: float = 60.0,
    ) -> None:
        self._on_fatal = on_fatal
        self.max_failures = max_failures
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.log_every = log_every
        self.reason: str | None = None
        self._logged = LogThrottle(log_every)

    @property
    def healthy(self) -> bool:
        """False once a loop could not go on."""
        return self.reason is None

    def fail(self, reason: str) -> None:
        """Mark the backend DOWN for good (the first reason wins) and tell `on_fatal`."""
        if self.reason is not None:
            return
        self.reason = reason
        logger.critical("background work cannot go on: %s", reason)
        if self._on_fatal is not None:
            self._on_fatal(reason)

    async def loop(
        self, name: str, step: Step, *, idle: Callable[[], Awaitable[None]] | float
    ) -> None:
        """Run `step` until the backend goes DOWN; idle when it had nothing to do."""
        failures: list[str] = []
        while self.healthy:
            try:
                worked = await step()
            except Exception as exc:
                if not await self._failed(name, exc, failures):
                    return
                continue
            failures.clear()
            if not worked:
                await (anyio.sleep(idle) if isinstance(idle, (int, float)) else idle())

    async def retry(self, name: str, action: Callable[[], Awaitable[Any]]) -> bool:
        """Run `action` until it succeeds (True) or the backend goes DOWN (False)."""
        failures: list[str] = []
        while self.healthy:
            try:
                await action()
            except Exception as exc:
                if not await self._failed(name, exc, failures):
                    return False
                continue
            return True
        return False

    async def once(self, name: str, action: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a one-shot task; an exception is logged (rate-limited), never propagated."""
        try:
            await action(*args)
        except Exception as exc:
            self._log(name, exc)
            if is_fatal(exc):
                self.fail(f"{name}: {describe(exc)}")

    async def forever(self, name: str, action: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run a task meant to last as long as the app: if it ends anyway, go DOWN."""
        try:
            await action(*args)
        except Exception as exc:
            self._log(name, exc)
            self.fail(f"{name} stopped: {describe(exc)}")
        else:
            if self.healthy:
                self.fail(f"{name} stopped")

    async def _failed(self, name: str, exc: Exception, failures: list[str]) -> bool:
        """Log `exc`, then back off; False when the loop must stop."""
        self._log(name, exc)
        kind = f"{type(exc).__qualname__}: {exc}"
        if failures and failures[-1] != kind:
            failures.clear()
        failures.append(kind)
        if is_fatal(exc):
            self.fail(f"{name}: {describe(exc)}")
            return False
        if len(failures) >= self.max_failures:
            self.fail(f"{name} failed {len(failures)} times in a row: {describe(exc)}")
            return False
        delay = min(self.max_backoff, self.backoff * 2.0 ** (len(failures) - 1))
        await anyio.sleep(delay if math.isfinite(delay) else self.max_backoff)
        return True

    def _log(self, name: str, exc: BaseException) -> None:
        kind = f"{name}\n{type(exc).__qualname__}"
        first = not self._logged.seen(kind)
        if not self._logged.allow(kind):
            return
        if first:
            logger.error("%s failed; going on", name, exc_info=exc)
        else:
            logger.error("%s failed again; going on: %s", name, describe(exc))


class GuardedGroup:
    """A task group whose tasks run under `Supervisor.once`: one failing task never cancels
    the others (an exception in an anyio task group cancels every task in it)."""

    def __init__(
        self, task_group: Any, supervisor: Supervisor, name: str, *, forever: bool = False
    ) -> None:
        self._task_group = task_group
        self._supervisor = supervisor
        self._name = name
        self._forever = forever

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start `func(*args)` in the group, guarded (`forever`: its end makes the app DOWN)."""
        guard = self._supervisor.forever if self._forever else self._supervisor.once
        name = f"{self._name} {getattr(func, '__qualname__', '')}".strip()
        self._task_group.start_soon(guard, name, func, *args)


class Wakeup:
    """New work is queued: one signal shared by whoever queues work and the loop that does it,
    so that the loop stops idling at once instead of at its next poll."""

    def __init__(self) -> None:
        self._event = anyio.Event()

    def set(self) -> None:
        """Wake the loop (from the event loop's thread)."""
        self._event.set()

    async def rest(self, seconds: float) -> None:
        """Idle for up to `seconds`, or until `set`; then arm again."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        self._event = anyio.Event()
