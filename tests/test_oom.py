"""Out of memory: a `predict` call that runs out of memory is split in halves, down to one task;
a task out of memory alone gets an `out_of_memory` entry (inline) or fails as an item
(background), and `/metrics` counts both."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator
from typing import Any

import pytest

from relaxml import Context, Prediction, Task
from relaxml._oom import is_out_of_memory
from relaxml.model import check_attributes
from relaxml.testing import FakeLabelStudio

from .conftest import backend_of, wait_for
from .support.models import Echo, choice

PROJECT = 7
LIMIT = 2  # the fake GPU holds this many tasks at once


class OutOfMemoryError(RuntimeError):
    """Looks like torch's (`torch.cuda.OutOfMemoryError`), without torch."""


OutOfMemoryError.__module__ = "torch.cuda"


class ShortOfMemory(Exception):
    """A model's own out-of-memory error, listed in `oom_errors`."""


class Greedy(Echo):
    """Runs out of memory above `LIMIT` tasks, and on a task whose data says huge, even alone."""

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        self.calls.append(([t.id for t in tasks], context))
        if len(tasks) > LIMIT or any(t.data.get("huge") for t in tasks):
            raise OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [Prediction(result=[choice(t)]) for t in tasks]


class OwnError(Echo):
    """Raises its own listed error above `LIMIT` tasks; its predict is async."""

    oom_errors = (ShortOfMemory,)

    async def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:  # type: ignore[override]
        self.calls.append(([t.id for t in tasks], context))
        if len(tasks) > LIMIT or any(t.data.get("huge") for t in tasks):
            raise ShortOfMemory("no room")
        return [Prediction(result=[choice(t)]) for t in tasks]


class Batched(Greedy):
    max_batch_size = 4
    batch_timeout = 0.2  # the four requests below share one call


class BackgroundGreedy(Greedy):
    delivery = "background"


def body(*ids: int, huge: tuple[int, ...] = ()) -> dict[str, Any]:
    return {
        "project": f"{PROJECT}.1",
        "tasks": [
            {"id": i, "data": {"text": str(i), "huge": i in huge}, "project": PROJECT} for i in ids
        ],
    }


def calls(client: Any) -> list[list[int]]:
    return [ids for ids, _ in backend_of(client).model.calls]


def metric(client: Any, line: str) -> bool:
    return line in client.get("/metrics").text.splitlines()


def test_torch_errors_are_recognized_by_name_and_module_without_torch():
    assert is_out_of_memory(OutOfMemoryError("x"))
    torch_top = type("OutOfMemoryError", (RuntimeError,), {"__module__": "torch"})
    assert is_out_of_memory(torch_top())
    assert is_out_of_memory(type("Sub", (OutOfMemoryError,), {})())  # a subclass
    assert not is_out_of_memory(type("OutOfMemoryError", (RuntimeError,), {})())  # not torch's
    assert not is_out_of_memory(MemoryError())
    assert not is_out_of_memory(RuntimeError("CUDA out of memory"))
    assert is_out_of_memory(ShortOfMemory(), (ShortOfMemory,))


def test_a_batch_out_of_memory_is_split_in_halves_until_it_fits(serve):
    client = serve(Greedy)
    answer = client.post("/predict", json=body(1, 2, 3, 4, 5, 6, 7, 8))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["result"][0]["id"] for r in results] == [f"r{i}" for i in range(1, 9)]
    assert calls(client) == [[1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 3, 4], [1, 2], [3, 4],
                             [5, 6, 7, 8], [5, 6], [7, 8]]  # fmt: skip
    assert metric(client, 'relaxml_oom_splits_total{mode="inline"} 3')
    assert metric(client, 'relaxml_tasks_predicted_total{mode="inline"} 8')
    assert "relaxml_oom_failures_total{" not in client.get("/metrics").text


def test_a_task_out_of_memory_alone_gets_an_error_entry_and_the_rest_succeeds(serve):
    client = serve(Greedy)
    answer = client.post("/predict", json=body(1, 2, 3, 4, huge=(3,)))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["result"][0]["id"] for r in results if "result" in r] == ["r1", "r2", "r4"]
    assert results[2] == {
        "error": "out_of_memory",
        "detail": "Greedy.predict ran out of memory on task 3 alone: "
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    }
    assert calls(client)[-2:] == [[3], [4]]
    assert metric(client, 'relaxml_oom_failures_total{mode="inline"} 1')
    assert metric(client, 'relaxml_oom_splits_total{mode="inline"} 2')
    assert metric(client, 'relaxml_tasks_predicted_total{mode="inline"} 3')
    assert metric(client, 'relaxml_predict_errors_total{mode="inline"} 1')


def test_a_request_whose_every_task_runs_out_of_memory_answers_503(serve):
    client = serve(Greedy)
    answer = client.post("/predict", json=body(5, huge=(5,)))
    assert answer.status_code == 503
    assert answer.json() == {
        "error": "out_of_memory",
        "detail": "Greedy.predict ran out of memory on task 5 alone: "
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    }
    two = client.post("/predict", json=body(6, 7, huge=(6, 7)))
    assert two.status_code == 503
    assert two.json()["detail"].endswith("(and each of the other 1 tasks too)")
    assert client.get("/health").status_code == 200
    assert metric(client, 'relaxml_oom_failures_total{mode="inline"} 3')


def test_listed_errors_of_an_async_predict_split_too(serve):
    client = serve(OwnError)
    answer = client.post("/predict", json=body(1, 2, 3, huge=(1,)))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0]["error"] == "out_of_memory"
    assert results[0]["detail"].endswith("task 1 alone: ShortOfMemory: no room")
    assert [r["result"][0]["id"] for r in results[1:]] == ["r2", "r3"]
    assert calls(client) == [[1, 2, 3], [1, 2], [1], [2], [3]]


def test_other_errors_are_not_split(serve):
    class Broken(Echo):
        def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
            self.calls.append(([t.id for t in tasks], context))
            raise RuntimeError("CUDA error: device-side assert triggered")

    client = serve(Broken)
    answer = client.post("/predict", json=body(1, 2, 3, 4))
    assert answer.status_code == 500
    assert answer.json()["error"] == "model_error"
    assert calls(client) == [[1, 2, 3, 4]]


def test_a_merged_batch_out_of_memory_is_split_and_each_request_gets_its_own(serve):
    client = serve(Batched)
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(lambda i: client.post("/predict", json=body(i, huge=(4,))), [1, 2, 3, 4])
        )
    assert [a.status_code for a in answers] == [200, 200, 200, 503]
    for i, answer in enumerate(answers[:3], start=1):
        assert answer.json()["results"][0]["result"][0]["id"] == f"r{i}"
    assert answers[3].json()["error"] == "out_of_memory"
    assert max(len(c) for c in calls(client)) > 1  # merged, then split


@pytest.fixture
def fake() -> Iterator[FakeLabelStudio]:
    with FakeLabelStudio(accept_unknown_tasks=True) as server:
        server.add_project(id=PROJECT)
        yield server


def test_background_jobs_split_and_fail_only_the_task_out_of_memory_alone(serve, fake):
    client = serve(BackgroundGreedy)
    setup = {"project": f"{PROJECT}.1", "hostname": fake.url, "access_token": fake.api_key}
    assert client.post("/setup", json=setup).status_code == 200
    job = client.post("/predict", json=body(1, 2, 3, 4, 5, huge=(2,))).json()["job"]
    wait_for(lambda: client.get(f"/jobs/{job}").json()["state"] == "done")
    status = client.get(f"/jobs/{job}").json()
    assert (status["done"], status["failed"]) == (4, 1)
    assert status["errors"] == [
        {
            "task": 2,
            "state": "failed",
            "error": "BackgroundGreedy.predict ran out of memory on task 2 alone: "
            "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        }
    ]
    wait_for(lambda: sorted(fake.predictions_by_task()) == [1, 3, 4, 5])
    assert [1, 2, 3, 4, 5] in calls(client)  # the whole batch first, then its halves
    assert metric(client, 'relaxml_oom_failures_total{mode="background"} 1')
    assert metric(client, 'relaxml_predict_errors_total{mode="background"} 1')
    assert 'relaxml_oom_splits_total{mode="background"}' in client.get("/metrics").text


def test_oom_errors_must_be_a_tuple_of_exception_classes():
    class Wrong(Echo):
        oom_errors = (ShortOfMemory, "MemoryError")  # type: ignore[assignment]

    with pytest.raises(TypeError, match=r"Wrong.oom_errors must be a tuple of exception classes"):
        check_attributes(Wrong)
    check_attributes(OwnError)
