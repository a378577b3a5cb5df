"""`ModelThreads`: the threads a sync model's `predict` runs in.

A sync `predict` must not block the event loop, so it runs in a thread. Handing every call to
anyio's thread pool costs a limiter, a checkpoint and a round of the event loop per call;
relaxml keeps `count` threads of its own instead. Calls wait in order, `urgent` ones (an
annotator waiting on a smart tool) ahead of the rest; each caller gets exactly its own result
or exception.

A thread that finishes a call takes the next waiting one itself, up to `EAGER_CALLS` in a
row, then leaves the next hand-off to the event loop. Taking calls on its own saves a round
of the loop per call; doing so without end made the thread contend for the GIL with the loop
at every one of the loop's system calls, and under 200 concurrent clients `/health` waited
tens of milliseconds (see docs/benchmarks.md, "Soak").

A call that runs alone and is expected to be short (`wait`, at most `SHORT_WAIT`) is waited
for by the event loop itself, the GIL released: the thread takes the GIL at once, runs the
call and hands the result straight back, as if the call ran on the loop. Without that wait the
loop went on to read other requests while the call ran, and a server of a fast sync model
answered about a quarter fewer requests a second than the same model written `async def`
(docs/benchmarks.md, "The third pass"). A call that takes longer than the wait is awaited
like any other. Getting the GIL back after a wait can take longer when other threads hold it
in turn (delivery, training): a wait that held the loop longer than `SHORT_WAIT` stops the
waits for `WAIT_PAUSE` seconds.

Like anyio's threads, a call cannot be abandoned: a caller cancelled while its call runs
waits for it (the thread, and so the slot, stays busy until the call returns).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import anyio

T = TypeVar("T")

EAGER_CALLS = 3
"""Calls a thread takes in a row from the queue on its own before it waits for the loop."""

SHORT_WAIT = 0.001
"""The longest the event loop waits itself for a call expected to be short (`run`'s `wait`)."""

WAIT_PAUSE = 1.0
"""Seconds without such waits after one held the loop longer than `SHORT_WAIT`."""


class _Call:
    """One blocking call on its way to a thread and back."""

    __slots__ = ("args", "context", "fn", "future", "loop", "outcome", "returned", "waiting")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], loop: asyncio.AbstractEventLoop
    ) -> None:
        self.fn = fn
        self.args = args
        self.context = contextvars.copy_context()
        self.loop = loop
        self.future: asyncio.Future[Any] = loop.create_future()
        # While the loop waits on the call itself (`ModelThreads._wait`): a lock held until the
        # call returns, and then the call's (value, failed, freed). `waiting` is read and
        # cleared under the threads' lock, so exactly one of the two sides finishes the call.
        self.returned = threading.Lock()
        self.waiting = False
        self.outcome: tuple[Any, bool, bool] | None = None


class ModelThreads:
    """`count` threads running blocking calls queued from one event loop, urgent ones first.

    The waiting calls and the count of free threads are shared with the threads (`_lock`);
    results are handed back on the event loop's thread (`_finish`).
    """

    def __init__(self, count: int, name: str = "relaxml-predict") -> None:
        if count < 1:
            raise ValueError(f"ModelThreads needs at least one thread, got {count}")
        self.count = count
        self.name = name
        self._free = count  # threads not holding a call
        self._urgent: deque[_Call] = deque()
        self._normal: deque[_Call] = deque()
        self._handoff: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._lock = threading.Lock()  # the waiting calls and `_free`, shared with the threads
        self._no_wait_until = 0.0  # the loop does not wait on calls before then (monotonic)

    @property
    def busy(self) -> int:
        """Calls running now (or whose result is on its way to the loop)."""
        return self.count - self._free

    @property
    def queued(self) -> int:
        """Calls waiting for a thread."""
        return len(self._urgent) + len(self._normal)

    async def run(
        self, fn: Callable[..., T], *args: Any, urgent: bool = False, wait: float = 0.0
    ) -> T:
        """`fn(*args)` in one of the threads (with the caller's context variables).

        With `wait` (seconds, at most `SHORT_WAIT`), a call that finds a thread free while no
        other call runs is waited for by the loop itself for up to that long."""
        if self._closed:
            raise RuntimeError("ModelThreads is closed")
        call = _Call(fn, args, asyncio.get_running_loop())
        may_wait = wait > 0 and time.monotonic() >= self._no_wait_until
        with self._lock:
            free = self._free > 0
            if free:
                self._free -= 1
                call.waiting = may_wait and self._free == self.count - 1  # it runs alone
            else:
                (self._urgent if urgent else self._normal).append(call)
        if call.waiting:
            call.returned.acquire()
        if free:
            self._hand(call)
        if call.waiting:
            self._wait(call, min(wait, SHORT_WAIT))
        future: asyncio.Future[T] = call.future
        if future.done():
            return future.result()
        with anyio.CancelScope(shield=True):  # the call runs on: wait for it, as anyio does
            result = await future
        return result

    def close(self) -> None:
        """Let each thread finish its call and stop; calls still waiting fail."""
        with self._lock:
            self._closed = True
            waiting = [*self._urgent, *self._normal]
            self._urgent.clear()
            self._normal.clear()
        for call in waiting:
            if not call.future.done():
                call.future.set_exception(RuntimeError("the server is shutting down"))
        for _ in self._threads:
            self._handoff.put(None)
        self._threads = []

    def _hand(self, call: _Call) -> None:  # a thread was taken for it (`_free` counted)
        if len(self._threads) < self.count:
            thread = threading.Thread(
                target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self._handoff.put(call)

    def _wait(self, call: _Call, seconds: float) -> None:
        """On the loop, blocking it for about `seconds` at most (the GIL released): finish
        `call` here if it returns by then; if not, the thread hands it to the loop when it does.

        Getting the GIL back can take longer when other threads hold it in turn (a training
        run, a delivery): a wait that held the loop longer than `SHORT_WAIT` stops the waits
        for `WAIT_PAUSE` seconds, so that other requests are not held up behind them."""
        started = time.monotonic()
        call.returned.acquire(timeout=seconds)
        with self._lock:
            call.waiting = False
            outcome = call.outcome
            call.outcome = None
        ended = time.monotonic()
        if ended - started > SHORT_WAIT:
            self._no_wait_until = ended + WAIT_PAUSE
        if outcome is not None:
            self._finish(call, *outcome)

    def _finish(self, call: _Call, value: Any, failed: bool, freed: bool) -> None:
        """On the loop: hand the caller its result; a freed thread takes the next call."""
        future = call.future
        if not future.done():
            if failed:
                future.set_exception(value)
            else:
                future.set_result(value)
        if freed:
            with self._lock:
                following = self._next() if not self._closed else None
                if following is None:
                    self._free += 1
            if following is not None:
                self._hand(following)

    def _next(self) -> _Call | None:  # under self._lock
        if self._urgent:
            return self._urgent.popleft()
        return self._normal.popleft() if self._normal else None

    def _work(self) -> None:
        call = self._handoff.get()
        streak = 0
        while call is not None:
            try:
                value, failed = call.context.run(call.fn, *call.args), False
            except BaseException as exc:  # handed to the caller, like anyio's threads
                value, failed = exc, True
            with self._lock:
                # a few calls in a row, then the loop's turn
                following = self._next() if streak < EAGER_CALLS and not self._closed else None
                waited = call.waiting  # the loop is still waiting on this very call
                if waited:
                    call.outcome = (value, failed, following is None)
                    call.returned.release()
            streak = streak + 1 if following is not None else 0
            if not waited:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    call.loop.call_soon_threadsafe(
                        self._finish, call, value, failed, following is None
                    )
            del value
            call = following if following is not None else self._handoff.get()
