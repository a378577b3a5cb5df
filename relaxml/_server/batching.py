"""`MicroBatcher`: merge small concurrent `predict` requests into one model call.

With `batch_timeout` set on the model, a request smaller than `max_batch_size` waits up to
`batch_timeout` seconds for others of the same project and label config; then one `predict`
call gets all their tasks (never more than `max_batch_size`), and each request gets back its
own entries, in order. A batch whose time is up while the model is still busy with earlier
merged calls (as many as it has slots) stays open until one of them returns: requests that
would only queue behind the model join it instead, up to `max_batch_size`, so a busy model
gets full batches back to back. If the merged call fails, each request in it gets the error:
a failing batch fails only its own requests. Interactive requests are never merged. At most
`MAX_OPEN` batches wait at once; a request beyond that runs alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from ..context import Context, RunModel
from ..protocol import Task

MAX_OPEN = 256
"""Most batches (distinct project and label config pairs) waiting at once."""


class Spawner(Protocol):
    """Where flush tasks run: a task group (relaxml's guards them: `supervise.GuardedGroup`)."""

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start `func(*args)` soon."""


@dataclass
class _Waiter:
    tasks: list[Task]
    done: anyio.Event = field(default_factory=anyio.Event)
    result: list[Any] | None = None
    error: BaseException | None = None


@dataclass
class _Batch:
    context: Context
    waiters: list[_Waiter] = field(default_factory=list)
    size: int = 0


class MicroBatcher:
    """Collects requests per (project, label config) and flushes them as one call."""

    def __init__(
        self,
        run: RunModel,
        task_group: Spawner,
        *,
        max_size: int,
        timeout: float,
        slots: int = 1,
    ) -> None:
        self._run = run
        self._task_group = task_group
        self.max_size = max_size
        self.timeout = timeout
        self.slots = slots  # the model's concurrent calls (`max_concurrency`)
        self._open: dict[tuple[str, str | None], _Batch] = {}
        self._flushed = 0  # merged calls handed to the model and not yet returned
        self._due: deque[tuple[tuple[str, str | None], _Batch]] = deque()

    async def submit(self, tasks: list[Task], context: Context) -> list[Any]:
        """Predict `tasks`, possibly together with other requests; return their entries."""
        if context.is_interactive or len(tasks) >= self.max_size:
            return await self._run(tasks, context)
        key = (context.project.uid, context.label_config)
        batch = self._open.get(key)
        if batch is None and len(self._open) >= MAX_OPEN:
            return await self._run(tasks, context)
        if batch is not None and batch.size + len(tasks) > self.max_size:
            self._flush(key, batch)
            batch = None
        if batch is None:
            batch = self._open[key] = _Batch(context)
            self._task_group.start_soon(self._flush_later, key, batch)
        waiter = _Waiter(tasks)
        batch.waiters.append(waiter)
        batch.size += len(tasks)
        if batch.size >= self.max_size:
            self._flush(key, batch)
        await waiter.done.wait()
        if waiter.error is not None:
            raise waiter.error
        assert waiter.result is not None
        return waiter.result

    async def _flush_later(self, key: tuple[str, str | None], batch: _Batch) -> None:
        await anyio.sleep(self.timeout)
        if self._open.get(key) is not batch:
            return  # flushed full
        if self._flushed < self.slots:
            self._flush(key, batch)
        else:  # the model is busy with merged calls: keep filling until one returns
            self._due.append((key, batch))

    def _flush(self, key: tuple[str, str | None], batch: _Batch) -> None:
        if self._open.get(key) is batch:
            del self._open[key]
        self._flushed += 1
        self._task_group.start_soon(self._execute, batch)

    def _returned(self) -> None:
        """A merged call returned: the oldest due batch still open takes its place."""
        self._flushed -= 1
        while self._due and self._flushed < self.slots:
            key, batch = self._due.popleft()
            if self._open.get(key) is batch:
                self._flush(key, batch)

    async def _execute(self, batch: _Batch) -> None:
        tasks = [task for waiter in batch.waiters for task in waiter.tasks]
        try:
            entries = await self._run(tasks, batch.context)
        except Exception as exc:
            for waiter in batch.waiters:
                waiter.error = exc
                waiter.done.set()
            return
        finally:
            self._returned()
        start = 0
        for waiter in batch.waiters:
            waiter.result = entries[start : start + len(waiter.tasks)]
            start += len(waiter.tasks)
            waiter.done.set()
