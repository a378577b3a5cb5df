"""Where and when `predict` runs: off the event loop, a bounded number at a time.

A request is first *admitted* (at most `max_concurrency + max_queue` requests are in the
house; beyond that the answer is 503 with `Retry-After`), then each of its chunks waits for one
of `max_concurrency` slots. Chunks of different requests take turns, so an annotator's single
task does not wait for the whole of a bulk request, and `/health` is never blocked: sync models
run in relaxml's model threads (`threads.py`), async models on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..errors import HTTPError
from .threads import ModelThreads

T = TypeVar("T")


class Overloaded(HTTPError):
    """Too many prediction requests are waiting: try again shortly."""

    def __init__(self, waiting: int, retry_after: int = 1) -> None:
        super().__init__(
            503,
            "overloaded",
            f"{waiting} prediction requests are already waiting; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


class Scheduler:
    """Bounds concurrent `predict` calls and the queue of requests waiting for them.

    Create it inside a running event loop (the app's lifespan does).
    """

    def __init__(self, *, max_concurrency: int = 1, max_queue: int = 256) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(max_concurrency)  # async models; no checkpoint when free
        self._awaiting = 0  # async calls holding a slot
        self._threads = ModelThreads(max_concurrency)  # sync models
        self._admitted = 0
        self._place = _Place(self)

    @property
    def running(self) -> int:
        """Predict calls running now."""
        return self._awaiting + self._threads.busy

    @property
    def waiting(self) -> int:
        """Admitted requests not running a call right now."""
        return max(0, self._admitted - self.running)

    def admit(self) -> _Place:
        """Hold a place for one request (`with scheduler.admit():`), or raise `Overloaded`
        when the house is full."""
        if self._admitted >= self.max_concurrency + self.max_queue:
            raise Overloaded(self.waiting)
        self._admitted += 1
        return self._place

    async def run_sync(
        self, fn: Callable[..., T], *args: Any, urgent: bool = False, wait: float = 0.0
    ) -> T:
        """Run a blocking call in one of `max_concurrency` model threads, in the order calls
        come, `urgent` ones (an annotator waiting) first. The thread is held by the call, so
        a cancelled request never frees it while the call still runs. A call expected to be
        short is waited for by the loop for up to `wait` seconds (`ModelThreads.run`)."""
        return await self._threads.run(fn, *args, urgent=urgent, wait=wait)

    async def run_async(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Await a coroutine function once a slot is free."""
        async with self._slots:
            self._awaiting += 1
            try:
                return await fn(*args)
            finally:
                self._awaiting -= 1

    def close(self) -> None:
        """Stop the model threads once their calls return."""
        self._threads.close()


class _Place:
    """A request's place in the house, given back when its `with` block ends."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        self._scheduler._admitted -= 1


def chunked(items: Sequence[T], size: int | None) -> list[Sequence[T]]:
    """Split `items` into chunks of at most `size` (one chunk when size is None)."""
    if not size or len(items) <= size:
        return [items]
    return [items[i : i + size] for i in range(0, len(items), size)]
