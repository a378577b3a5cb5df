"""Concurrency: the bound on predict calls, async predict, and micro-batching."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from relaxml import Context, Prediction, Task

from .conftest import backend_of
from .support.models import Echo, choice


class Counting(Echo):
    """Records the size of each call and the most calls seen running at once."""

    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        time.sleep(0.02)
        if any(t.data.get("boom") for t in tasks):
            with self.lock:
                self.running -= 1
            raise ValueError("boom")
        try:
            return super().predict(tasks, context)
        finally:
            with self.lock:
                self.running -= 1


class Batched(Counting):
    batch_timeout = 0.05
    max_batch_size = 64


def one(task_id: int, project: str = "1.1", **data: Any) -> dict[str, Any]:
    return {"project": project, "tasks": [{"id": task_id, "data": data}]}


def post_all(client: Any, bodies: list[dict[str, Any]]) -> list[Any]:
    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(lambda b: client.post("/predict", json=b), bodies))


def test_one_predict_call_at_a_time_by_default(serve):
    client = serve(Counting)
    answers = post_all(client, [one(i) for i in range(12)])
    assert all(a.status_code == 200 for a in answers)
    assert backend_of(client).model.most == 1


def test_the_bound_is_configurable(serve):
    client = serve(Counting, max_concurrency=4)
    post_all(client, [one(i) for i in range(12)])
    assert 1 < backend_of(client).model.most <= 4


def test_without_batch_timeout_nothing_is_merged(serve):
    client = serve(Counting)
    post_all(client, [one(i) for i in range(8)])
    assert [len(ids) for ids, _ in backend_of(client).model.calls] == [1] * 8


def test_concurrent_single_task_requests_share_calls_and_get_their_own_answer(serve):
    client = serve(Batched)
    answers = post_all(client, [one(i) for i in range(1, 41)])
    for task_id, answer in zip(range(1, 41), answers, strict=True):
        assert answer.status_code == 200
        assert answer.json()["results"][0]["result"] == [choice(Task(id=task_id, data={}))]
    calls = backend_of(client).model.calls
    assert sum(len(ids) for ids, _ in calls) == 40
    assert len(calls) < 10


def test_merged_calls_never_exceed_max_batch_size(serve):
    class Small(Batched):
        max_batch_size = 4

    client = serve(Small)
    post_all(client, [one(i) for i in range(1, 21)])
    sizes = [len(ids) for ids, _ in backend_of(client).model.calls]
    assert sum(sizes) == 20
    assert max(sizes) <= 4
    assert len(sizes) < 20


def test_a_failing_batch_fails_only_its_own_requests(serve):
    client = serve(Batched)
    bodies = [one(i, project="1.1", boom=True) for i in range(1, 6)]
    bodies += [one(i, project="2.1") for i in range(6, 11)]
    answers = post_all(client, bodies)
    assert [a.status_code for a in answers] == [500] * 5 + [200] * 5
    assert answers[0].json()["detail"] == "Batched.predict raised ValueError: boom"
    assert client.post("/predict", json=one(99, project="1.1")).status_code == 200


def test_interactive_requests_are_not_merged(serve):
    client = serve(Batched)
    body = one(1)
    body["params"] = {"context": {"result": []}}
    start = time.perf_counter()
    assert client.post("/predict", json=body).status_code == 200
    assert time.perf_counter() - start < Batched.batch_timeout + 0.5
    assert backend_of(client).model.calls[0][0] == [1]


def test_large_requests_are_not_held_back(serve):
    class Four(Batched):
        max_batch_size = 4

    client = serve(Four)
    answer = client.post("/predict", json={"tasks": [{"id": i, "data": {}} for i in range(9)]})
    assert len(answer.json()["results"]) == 9
    assert [len(ids) for ids, _ in backend_of(client).model.calls][:2] == [4, 4]


def test_requests_that_would_queue_behind_a_busy_model_join_one_batch(serve):
    class Busy(Counting):
        batch_timeout = 0.02
        max_batch_size = 64

        def predict(self, tasks: list[Task], context: Context) -> list[Prediction]:
            if tasks[0].id == 0:
                time.sleep(0.4)  # the model is busy with the first merged call
            return super().predict(tasks, context)

    client = serve(Busy)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(client.post, "/predict", json=one(0))
        time.sleep(0.08)  # the first call has left its batch and runs
        later = []
        for i in range(1, 6):  # 5 requests over 0.2 s: many batch timeouts apart
            later.append(pool.submit(client.post, "/predict", json=one(i)))
            time.sleep(0.04)
        answers = [first.result(), *(f.result() for f in later)]
    assert [a.status_code for a in answers] == [200] * 6
    for task_id, answer in enumerate(answers):
        assert answer.json()["results"][0]["result"] == [choice(Task(id=task_id, data={}))]
    assert [ids for ids, _ in backend_of(client).model.calls] == [[0], [1, 2, 3, 4, 5]]


def test_merged_requests_of_several_tasks_keep_their_order(serve):
    client = serve(Batched)
    bodies = [
        {"project": "1.1", "tasks": [{"id": 10 * r + i, "data": {}} for i in (3, 1, 2)]}
        for r in range(1, 9)
    ]
    answers = post_all(client, bodies)
    for body, answer in zip(bodies, answers, strict=True):
        assert answer.status_code == 200
        ids = [t["id"] for t in body["tasks"]]
        expected = [[choice(Task(id=i, data={}))] for i in ids]
        assert [r["result"] for r in answer.json()["results"]] == expected
    calls = backend_of(client).model.calls
    assert len(calls) < 8  # merged
    assert sorted(i for ids, _ in calls for i in ids) == sorted(
        t["id"] for b in bodies for t in b["tasks"]
    )
