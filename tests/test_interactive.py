"""Interactive requests first: an annotator's request goes ahead of queued bulk work, and
background batches stay small while annotators are at work."""

from __future__ import annotations

import threading
import time
from typing import Any

from relaxml import Context, LabelStudioModel, Task
from relaxml._delivery.pace import Pace

from .conftest import backend_of, wait_for


class Gated(LabelStudioModel):
    """Its first call holds the only model thread until `gate` is set; records every call."""

    max_batch_size = 1

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[tuple[str, int]] = []

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        if not self.calls and not self.gate.is_set():
            self.calls.append(("bulk", tasks[0].id))
            self.gate.wait(10)
        else:
            self.calls.append(("interactive" if context.is_interactive else "bulk", tasks[0].id))
        return [{"result": [], "score": 0.5} for _ in tasks]


def test_an_interactive_request_goes_ahead_of_queued_bulk_work(serve):
    model = Gated()
    client = serve(model)
    backend = backend_of(client)
    answers: dict[int, int] = {}

    def post(task_id: int, interactive: bool = False) -> None:
        params = {"context": {"result": []}} if interactive else {}
        body = {"tasks": [{"id": task_id, "data": {}}], "params": params}
        answers[task_id] = client.post("/predict", json=body).status_code

    threads = [threading.Thread(target=post, args=(1,))]
    threads[0].start()
    wait_for(lambda: model.calls)  # task 1 holds the model thread
    for task_id in (2, 3):
        threads.append(threading.Thread(target=post, args=(task_id,)))
        threads[-1].start()
        wait_for(lambda n=task_id - 1: backend.scheduler._threads.queued == n)
    threads.append(threading.Thread(target=post, args=(4, True)))
    threads[-1].start()
    wait_for(lambda: backend.scheduler._threads.queued == 3)
    model.gate.set()
    for thread in threads:
        thread.join(10)
    assert answers == {1: 200, 2: 200, 3: 200, 4: 200}
    assert model.calls == [("bulk", 1), ("interactive", 4), ("bulk", 2), ("bulk", 3)]


def test_background_batches_are_full_until_an_annotator_is_at_work():
    pace = Pace(slice_seconds=0.02, window=60)
    assert pace.batch(32) == 32  # nothing measured yet
    pace.record(10, 0.05)  # 5 ms per task
    assert pace.batch(32) == 32  # no annotator
    pace.note_interactive()
    assert pace.batch(32) == 4  # 20 ms of work
    assert pace.batch(2) == 2
    pace.record(1, 1.0)  # a slow call: the average moves, the batch shrinks to one task
    assert pace.batch(32) == 1


def test_background_batches_grow_back_when_annotators_leave():
    pace = Pace(slice_seconds=0.02, window=0.05)
    pace.record(10, 0.05)
    pace.note_interactive()
    assert pace.batch(32) == 4
    time.sleep(0.06)
    assert pace.batch(32) == 32


def test_pace_ignores_meaningless_samples():
    pace = Pace()
    pace.record(0, 1.0)
    pace.record(3, float("nan"))
    pace.record(3, -1.0)
    assert pace.per_task is None


class Sized(LabelStudioModel):
    """5 ms per task; records the size of each background call."""

    delivery = "background"

    def __init__(self) -> None:
        self.sizes: list[tuple[bool, int]] = []

    def predict(self, tasks: list[Task], context: Context) -> list[dict[str, Any]]:
        time.sleep(0.005 * len(tasks))
        self.sizes.append((context.is_interactive, len(tasks)))
        return [{"result": [], "score": 0.5} for _ in tasks]


def test_background_jobs_take_small_batches_while_an_annotator_is_at_work(serve):
    from relaxml.testing import FakeLabelStudio

    fake = FakeLabelStudio(accept_unknown_tasks=True)
    try:
        model = Sized()
        client = serve(model)
        setup = {"project": "7.1", "hostname": fake.url, "access_token": fake.api_key}
        assert client.post("/setup", json=setup).status_code == 200

        def job(first: int) -> dict[str, Any]:
            ids = range(first, first + 64)
            return {"project": "7.1", "tasks": [{"id": i, "data": {}, "project": 7} for i in ids]}

        assert client.post("/predict", json=job(1)).json()["queued"] == 64
        wait_for(lambda: len(fake.predictions_by_task()) == 64)
        assert {size for interactive, size in model.sizes} == {32}  # full batches: nobody waits
        one = {"project": "7.1", "tasks": [{"id": 999, "data": {}}], "params": {"context": {}}}
        assert client.post("/predict", json=one).status_code == 200
        model.sizes.clear()
        assert client.post("/predict", json=job(101)).json()["queued"] == 64
        wait_for(lambda: len(fake.predictions_by_task()) == 128)
        sizes = [size for interactive, size in model.sizes if not interactive]
        assert sum(sizes) == 64
        assert max(sizes) <= 4  # about 20 ms of work at 5 ms per task
    finally:
        fake.close()
