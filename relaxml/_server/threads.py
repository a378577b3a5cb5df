"""`ModelThreads`: the worker threads a sync model's `predict` runs in.

A sync `predict` must not block the event loop, so it runs in a thread. Handing every call to
anyio's thread pool costs a limiter, a checkpoint and a round of the event loop per call;
relaxml instead keeps `count` threads of its own that wait on one queue. A call is queued in
a microsecond, a thread that finishes one call takes the next queued one at once (without
waiting for the event loop), and only the result travels back to the loop. Calls start in the
order they were queued; each caller gets exactly its own result or exception.

Like anyio's threads, a call cannot be abandoned: a caller cancelled while its call runs waits
for it (the thread, and so the slot, stays busy until the call returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
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
    """`count` threads running blocking calls queued from the event loop, in order."""

    def __init__(self, count: int, name: str = "relaxml-predict") -> None:
        if count < 1:
            raise ValueError(f"ModelThreads needs at least one thread, got {count}")
        self.count = count
        self.name = name
        self.busy = 0  # calls running now; written by the threads, read anywhere
        self._queue: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in one of the threads (with the caller's context variables)."""
        if self._closed:
            raise RuntimeError("ModelThreads is closed")
        if len(self._threads) < self.count:
            self._start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put((fn, args, contextvars.copy_context(), future, loop))
        with anyio.CancelScope(shield=True):  # the call runs on: wait for it, as anyio does
            result = await future
        return result

    def close(self) -> None:
        """Let each thread finish its call and stop; calls still queued are not run."""
        with self._lock:
            self._closed = True
            threads, self._threads = self._threads, []
        while True:  # drop what no thread will take, failing its caller
            try:
                call = self._queue.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                _deliver(call, RuntimeError("the server is shutting down"), failed=True)
        for _ in threads:
            self._queue.put(None)

    def _start(self) -> None:
        with self._lock:
            while len(self._threads) < self.count and not self._closed:
                thread = threading.Thread(
                    target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            if call is None:
                return
            fn, args, context, future, _ = call
            if future.cancelled():
                continue
            with self._lock:
                self.busy += 1
            try:
                result = context.run(fn, *args)
            except BaseException as exc:  # handed to the caller, like anyio's threads
                _deliver(call, exc, failed=True)
            else:
                _deliver(call, result, failed=False)
            finally:
                with self._lock:
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
