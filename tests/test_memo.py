"""`context.memo`: expensive per-task work done once per key, bounded, emptied on a new version."""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from relaxml import Context, LabelStudioModel, Task
from relaxml.memo import Memo, size_of

from .conftest import backend_of, wait_for
from .support.models import Trainable


class Array:
    """Stands in for a NumPy array: what the memo counts is `nbytes`."""

    def __init__(self, nbytes: int) -> None:
        self.nbytes = nbytes


class Tensor:
    """Stands in for a PyTorch tensor: element size times element count."""

    def element_size(self) -> int:
        return 4

    def nelement(self) -> int:
        return 1000


def test_a_value_is_computed_once_per_key():
    memo = Memo()
    calls: list[str] = []

    def compute(key: str) -> str:
        calls.append(key)
        return key.upper()

    assert [memo.get(k, lambda k=k: compute(k)) for k in "abab"] == ["A", "B", "A", "B"]
    assert calls == ["a", "b"]
    assert (memo.hits, memo.misses) == (2, 2)
    assert memo.get("none", lambda: None) is None
    assert memo.get("none", lambda: pytest.fail("kept: not computed again")) is None


def test_the_memo_keeps_its_entries_and_bytes_least_recently_used_first():
    memo = Memo(entries=2, max_bytes=1_000)
    memo.get("a", lambda: Array(100))
    memo.get("b", lambda: Array(100))
    memo.get("a", lambda: Array(100))  # "a" is now the most recently used
    memo.get("c", lambda: Array(100))
    assert ["a" in memo, "b" in memo, "c" in memo] == [True, False, True]
    memo.get("d", lambda: Array(950))  # over the byte bound with "a": "a" goes
    assert ["a" in memo, "c" in memo, "d" in memo] == [False, False, True]
    assert memo.bytes == 950
    big = Array(5_000)
    assert memo.get("e", lambda: big) is big  # alone over the bound: answered, not kept
    assert "e" not in memo


def test_sizes_are_counted_for_arrays_tensors_and_their_containers():
    assert size_of(Array(123)) == 123
    assert size_of(Tensor()) == 4000
    pair = (Array(10), Tensor())
    assert size_of(pair) == sys.getsizeof(pair) + 4010
    assert size_of({"k": Array(7)}) > 7
    assert size_of(b"x" * 100) == sys.getsizeof(b"x" * 100)


def test_callers_asking_for_one_key_at_once_compute_it_once():
    memo = Memo()
    started = threading.Event()
    calls = 0

    def slow() -> str:
        nonlocal calls
        calls += 1
        started.set()
        time.sleep(0.2)
        return "embedding"

    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(memo.get, "image-1", slow)
        assert started.wait(5)
        others = [pool.submit(memo.get, "image-1", slow) for _ in range(3)]
        assert [f.result() for f in [first, *others]] == ["embedding"] * 4
    assert calls == 1


def test_a_failed_computation_reaches_its_callers_and_is_not_kept():
    memo = Memo()
    with pytest.raises(ValueError, match="encoder failed"):
        memo.get("k", lambda: (_ for _ in ()).throw(ValueError("encoder failed")))
    assert "k" not in memo
    assert memo.get("k", lambda: 42) == 42


def test_a_value_computed_before_a_clear_is_not_kept():
    memo = Memo()
    inside = threading.Event()
    release = threading.Event()

    def old_version() -> str:
        inside.set()
        release.wait(5)
        return "old"

    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(memo.get, "k", old_version)
        assert inside.wait(5)
        memo.clear()  # a new version is adopted meanwhile
        release.set()
        assert future.result() == "old"  # its own caller still gets it
    assert "k" not in memo
    assert memo.get("k", lambda: "new") == "new"


def test_bounds_must_be_sane():
    with pytest.raises(ValueError, match="at least 0"):
        Memo(entries=-1)

    class Bad(LabelStudioModel):
        memo_entries = -3

        def predict(self, tasks: list[Task], context: Context) -> list[Any]:
            return [None for _ in tasks]

    from relaxml import create_app

    with pytest.raises(ValueError, match=r"Bad\.memo_entries must be an integer of at least 0"):
        create_app(Bad)


class Clicker(Trainable):
    """A SAM-like model: an expensive image encoder, then a cheap step per prompt."""

    memo_entries = 4

    def __init__(self) -> None:
        super().__init__()
        self.encoded: list[int] = []

    def encode(self, task: Task) -> str:
        self.encoded.append(task.id)
        return f"embedding of {task.id} by {self.model_version}"

    def predict(self, tasks: list[Task], context: Context) -> list[Any]:
        out = []
        for task in tasks:
            key = ("embedding", task.id, self.model_version)
            embedding = context.memo.get(key, lambda task=task: self.encode(task))
            out.append({"result": [], "score": 0.5, "embedding": embedding})
        return out


def click(client: Any, task_id: int, x: float) -> Any:
    prompt = {
        "original_width": 100,
        "original_height": 100,
        "value": {"x": x, "y": 50, "width": 1, "keypointlabels": ["Cat"]},
        "from_name": "kp",
        "to_name": "image",
        "type": "keypointlabels",
    }
    body = {
        "tasks": [{"id": task_id, "data": {"image": f"/data/upload/1/{task_id}.png"}}],
        "params": {"context": {"result": [prompt]}},
    }
    return client.post("/predict", json=body)


def test_ten_clicks_on_one_image_run_the_encoder_once(serve):
    client = serve(Clicker)
    answers = [click(client, 7, x) for x in range(10, 110, 10)]
    assert [a.status_code for a in answers] == [200] * 10
    model = backend_of(client).model
    assert model.encoded == [7]
    assert click(client, 8, 50).status_code == 200
    assert model.encoded == [7, 8]


def test_a_new_model_version_starts_with_an_empty_memo(serve, captured):
    from .test_training import start_hook

    client = serve(Clicker)
    assert click(client, 7, 10).status_code == 200
    backend = backend_of(client)
    assert len(backend.memo) == 1
    client.post("/webhook", json=start_hook(captured))
    wait_for(lambda: client.get("/health").json()["model_version"] == "train-1")
    assert len(backend.memo) == 0
    assert click(client, 7, 20).status_code == 200
    assert backend.model.encoded == [7, 7]  # the trained model encoded it afresh
