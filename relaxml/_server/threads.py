"""`ModelThreads`: the worker threads a sync model's `predict` runs in.

A sync `predict` must not block the event loop, so it runs in a thread. Handing every call to
anyio's thread pool costs a limiter, a checkpoint and a round of the event loop per call;
relaxml instead keeps `count` threads of its own that wait on one queue. A call is queued in
a microsecond, a thread that finishes one call takes the next queued one at once (without
waiting for the event loop), and only the result travels back to the loop. Calls start in the
order they were queued, except that an `urgent` call (an annotator waiting on a smart tool)
starts before every call that is not; each caller gets exactly its own result or exception.

Like anyio's threads, a call cannot be abandoned: a caller cancelled while its call runs waits
for it (the thread, and so the slot, stays busy until the call returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

_Call = tuple[
    Callable[..., Any],
    tuple[Any, ...],
    contextvars.Context,
    "asyncio.Future[Any]",
    asyncio.AbstractEventLoop,
]


class ModelThreads:
    """`count` threads running blocking calls queued from the event loop, urgent ones first."""

    def __init__(self, count: int, name: str = "relaxml-predict") -> None:
        if count < 1:
            raise ValueError(f"ModelThreads needs at least one thread, got {count}")
        self.count = count
        self.name = name
        self.busy = 0  # calls running now; written by the threads, read anywhere
        self._urgent: deque[_Call] = deque()
        self._normal: deque[_Call] = deque()
        self._ready = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._closed = False

    @property
    def queued(self) -> int:
        """Calls waiting for a thread."""
        return len(self._urgent) + len(self._normal)

    async def run(self, fn: Callable[..., T], *args: Any, urgent: bool = False) -> T:
        """`fn(*args)` in one of the threads (with the caller's context variables)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        call: _Call = (fn, args, contextvars.copy_context(), future, loop)
        with self._ready:
            if self._closed:
                raise RuntimeError("ModelThreads is closed")
            if len(self._threads) < self.count:
                self._start()
            (self._urgent if urgent else self._normal).append(call)
            self._ready.notify()
        with anyio.CancelScope(shield=True):  # the call runs on: wait for it, as anyio does
            result = await future
        return result

    def close(self) -> None:
        """Let each thread finish its call and stop; calls still queued fail."""
        with self._ready:
            self._closed = True
            dropped = [*self._urgent, *self._normal]
            self._urgent.clear()
            self._normal.clear()
            self._threads = []
            self._ready.notify_all()
        for call in dropped:
            _deliver(call, RuntimeError("the server is shutting down"), failed=True)

    def _start(self) -> None:  # under self._ready
        while len(self._threads) < self.count:
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def _next(self) -> _Call | None:
        with self._ready:
            while not (self._urgent or self._normal or self._closed):
                self._ready.wait()
            if self._closed:
                return None
            self.busy += 1
            return self._urgent.popleft() if self._urgent else self._normal.popleft()

    def _work(self) -> None:
        while (call := self._next()) is not None:
            fn, args, context = call[0], call[1], call[2]
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # handed to the caller, like anyio's threads
                _deliver(call, exc, failed=True)
            else:
                _deliver(call, result, failed=False)
            finally:
                with self._ready:
                    self.busy -= 1


def _deliver(call: _Call, value: Any, *, failed: bool) -> None:
    """Resolve the caller's future on its event loop (nothing if the loop is gone)."""
    future, loop = call[3], call[4]
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_resolve, future, value, failed)


def _resolve(future: asyncio.Future[Any], value: Any, failed: bool) -> None:
    if future.cancelled():
        return
    if failed:
        future.set_exception(value)
    else:
        future.set_result(value)
