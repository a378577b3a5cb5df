"""ModelThreads: the threads a sync model's predict runs in."""

from __future__ import annotations

import contextvars
import threading
import time

import anyio
import pytest

from relaxml._server import threads as threads_module
from relaxml._server.threads import SHORT_WAIT, ModelThreads

REQUEST = contextvars.ContextVar("REQUEST", default="none")

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # relaxml serves on asyncio (uvicorn)


async def test_each_caller_gets_its_own_result_and_calls_start_in_order():
    threads = ModelThreads(1)
    started: list[int] = []

    def work(i: int) -> int:
        started.append(i)
        time.sleep(0.001)
        return i * 10

    results: dict[int, int] = {}

    async def call(i: int) -> None:
        results[i] = await threads.run(work, i)

    async with anyio.create_task_group() as group:
        for i in range(50):
            group.start_soon(call, i)
            await anyio.sleep(0)  # queued in this order
    assert results == {i: i * 10 for i in range(50)}
    assert started == list(range(50))
    threads.close()


async def test_an_exception_reaches_only_its_own_caller():
    threads = ModelThreads(1)

    def work(i: int) -> int:
        if i == 3:
            raise ValueError("three")
        return i

    outcomes: dict[int, object] = {}

    async def call(i: int) -> None:
        try:
            outcomes[i] = await threads.run(work, i)
        except ValueError as exc:
            outcomes[i] = exc

    async with anyio.create_task_group() as group:
        for i in range(6):
            group.start_soon(call, i)
    assert [outcomes[i] for i in (0, 1, 2, 4, 5)] == [0, 1, 2, 4, 5]
    assert isinstance(outcomes[3], ValueError)
    threads.close()


async def test_at_most_count_calls_run_at_once_in_threads_not_the_loop():
    threads = ModelThreads(2)
    lock = threading.Lock()
    running = peak = 0
    loop_thread = threading.get_ident()
    seen: set[int] = set()

    def work() -> None:
        nonlocal running, peak
        seen.add(threading.get_ident())
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.02)
        with lock:
            running -= 1

    async with anyio.create_task_group() as group:
        for _ in range(8):
            group.start_soon(threads.run, work)
    assert peak == 2
    assert loop_thread not in seen
    assert len(seen) == 2
    threads.close()


async def test_the_callers_context_variables_reach_the_call():
    threads = ModelThreads(1)
    REQUEST.set("req-7")
    assert await threads.run(REQUEST.get) == "req-7"
    threads.close()


async def test_a_cancelled_caller_waits_for_its_running_call():
    threads = ModelThreads(1)
    finished = threading.Event()

    def slow() -> str:
        time.sleep(0.2)
        finished.set()
        return "done"

    with anyio.move_on_after(0.05):
        await threads.run(slow)
    assert finished.is_set()  # the scope's deadline passed, but the call was waited for
    threads.close()


async def test_close_fails_queued_calls_and_refuses_new_ones():
    threads = ModelThreads(1)
    gate = threading.Event()
    outcomes: list[object] = []

    async def call(fn) -> None:
        try:
            outcomes.append(await threads.run(fn))
        except RuntimeError as exc:
            outcomes.append(str(exc))

    async with anyio.create_task_group() as group:
        group.start_soon(call, lambda: gate.wait(5) and "first")
        await anyio.sleep(0.05)
        group.start_soon(call, lambda: "second")
        await anyio.sleep(0.05)
        threads.close()
        gate.set()
    assert outcomes == ["the server is shutting down", "first"]
    with pytest.raises(RuntimeError, match="closed"):
        await threads.run(lambda: None)


async def test_an_urgent_call_starts_before_every_queued_call_that_is_not():
    threads = ModelThreads(1)
    gate = threading.Event()
    started: list[str] = []

    def work(name: str) -> str:
        if name == "running":
            gate.wait(5)
        started.append(name)
        return name

    async with anyio.create_task_group() as group:
        group.start_soon(threads.run, work, "running")
        await anyio.sleep(0.05)  # holds the only thread
        for i in range(3):
            group.start_soon(threads.run, work, f"bulk-{i}")
        await anyio.sleep(0.01)
        group.start_soon(lambda: threads.run(work, "annotator", urgent=True))
        await anyio.sleep(0.01)
        assert threads.queued == 4
        gate.set()
    assert started == ["running", "annotator", "bulk-0", "bulk-1", "bulk-2"]
    threads.close()


class _LoopRounds:
    """Counts the rounds of the event loop while it runs (a task that yields each round)."""

    def __init__(self) -> None:
        self.count = 0

    async def run(self) -> None:
        while True:
            self.count += 1
            await anyio.sleep(0)


async def test_a_short_call_running_alone_is_waited_for_without_a_round_of_the_loop(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setattr(threads_module, "SHORT_WAIT", 5.0)  # no machine is that slow
    threads = ModelThreads(1)
    rounds = _LoopRounds()
    loop_thread = threading.get_ident()
    async with anyio.create_task_group() as group:
        group.start_soon(rounds.run)
        await anyio.sleep(0.01)
        for i in range(20):
            before = rounds.count
            assert await threads.run(lambda i=i: (i, threading.get_ident()), wait=5.0) != (
                i,
                loop_thread,
            )  # still in the model thread
            assert rounds.count == before  # the loop waited: no other task ran meanwhile
        before = rounds.count
        await threads.run(lambda: None)  # no `wait`: awaited like before
        assert rounds.count > before
        group.cancel_scope.cancel()
    assert threads.busy == 0
    threads.close()


async def test_a_call_longer_than_the_wait_is_awaited_and_the_loop_serves_meanwhile():
    threads = ModelThreads(1)
    rounds = _LoopRounds()
    async with anyio.create_task_group() as group:
        group.start_soon(rounds.run)
        await anyio.sleep(0.01)
        before = rounds.count
        assert await threads.run(lambda: time.sleep(0.1) or "slow", wait=SHORT_WAIT) == "slow"
        assert rounds.count - before > 10  # blocked for at most SHORT_WAIT, not 100 ms
        group.cancel_scope.cancel()
    assert threads.busy == 0
    threads.close()


async def test_a_call_is_not_waited_for_while_another_call_runs(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(threads_module, "SHORT_WAIT", 5.0)
    threads = ModelThreads(2)
    gate = threading.Event()
    rounds = _LoopRounds()
    async with anyio.create_task_group() as group:
        group.start_soon(rounds.run)
        group.start_soon(threads.run, lambda: gate.wait(5))
        await anyio.sleep(0.01)
        assert threads.busy == 1
        before = rounds.count
        assert await threads.run(lambda: "fast", wait=5.0) == "fast"
        assert rounds.count > before  # not alone: the loop did not block on it
        gate.set()
        await anyio.sleep(0.05)
        group.cancel_scope.cancel()
    threads.close()


async def test_a_waited_call_that_raises_raises_in_its_caller(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(threads_module, "SHORT_WAIT", 5.0)
    threads = ModelThreads(1)

    def fail() -> None:
        raise ValueError("from the model")

    with pytest.raises(ValueError, match="from the model"):
        await threads.run(fail, wait=5.0)
    assert await threads.run(lambda: "next", wait=5.0) == "next"
    assert threads.busy == 0
    threads.close()


async def test_calls_ending_around_the_wait_each_get_their_own_outcome():
    """Calls of 0 to 2 ms against a wait of 1 ms: some return while the loop waits, some just
    after it gave up; each caller gets exactly its own result or exception, none is lost."""
    threads = ModelThreads(1)
    durations = [(i * 37 % 21) / 10_000 for i in range(300)]  # 0 to 2 ms, spread

    def work(i: int) -> int:
        time.sleep(durations[i])
        if i % 7 == 0:
            raise KeyError(i)
        return i

    outcomes: dict[int, object] = {}

    async def call(i: int) -> None:
        try:
            outcomes[i] = await threads.run(work, i, wait=SHORT_WAIT)
        except KeyError as exc:
            outcomes[i] = ("raised", exc.args[0])

    with anyio.fail_after(30):
        for i in range(300):  # one at a time: each runs alone, so each is waited for
            await call(i)
        async with anyio.create_task_group() as group:  # and crowded: most are queued
            for i in range(300):
                group.start_soon(call, i)
    assert outcomes == {i: ("raised", i) if i % 7 == 0 else i for i in range(300)}
    assert threads.busy == 0
    assert threads.queued == 0
    threads.close()


async def test_a_wait_that_held_the_loop_too_long_pauses_the_waits(
    monkeypatch: pytest.MonkeyPatch,
):
    """Getting the GIL back can take long when other threads hold it: a wait that held the
    loop longer than `SHORT_WAIT` stops the waits for `WAIT_PAUSE` seconds."""
    monkeypatch.setattr(threads_module, "WAIT_PAUSE", 1.0)
    threads = ModelThreads(1)
    rounds = _LoopRounds()
    async with anyio.create_task_group() as group:
        group.start_soon(rounds.run)
        await anyio.sleep(0.01)
        assert await threads.run(lambda: time.sleep(0.02) or "slow", wait=SHORT_WAIT) == "slow"
        monkeypatch.setattr(threads_module, "SHORT_WAIT", 5.0)
        before = rounds.count
        assert await threads.run(lambda: "fast", wait=5.0) == "fast"
        assert rounds.count > before  # paused: awaited, not waited for
        await anyio.sleep(1.2)
        before = rounds.count
        assert await threads.run(lambda: "fast", wait=5.0) == "fast"
        assert rounds.count == before  # the pause is over: waited for again
        group.cancel_scope.cancel()
    threads.close()
