"""`Memo`: keep the result of expensive per-task work between calls.

An annotator who clicks ten times on one image with a smart tool sends ten interactive
`/predict` calls for the same task. A SAM-like model runs its image encoder on each, though only
the prompt changed. `context.memo.get(key, compute)` runs `compute()` once per key and hands
back the kept value afterwards:

    embedding = context.memo.get(("embedding", task.data["image"]), lambda: self.encode(image))

The memo is bounded by entries and by bytes, least recently used first out; it belongs to the
model relaxml serves and is emptied when a new model version is adopted, so a value computed by
an old version is never handed to a new one. Calls that ask for the same key at once compute
it once: the others wait for it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

from ._lru import LRU

__all__ = ["Memo", "size_of"]

V = TypeVar("V")

ENTRIES = 16
"""Values a memo keeps by default (one image embedding each, for a SAM-like model)."""
BYTES = 1 << 30
"""Bytes a memo keeps by default (1 GiB, as `size_of` counts them)."""


def size_of(value: object) -> int:
    """The bytes `value` holds, as the memo counts them: `nbytes` of an array (NumPy, and
    anything with that attribute), element size times count of a tensor (PyTorch), the sum over
    the items of a tuple, list or dict of them, `sys.getsizeof` of anything else."""
    nbytes = getattr(value, "nbytes", None)
    if isinstance(nbytes, int):
        return nbytes
    element_size, nelement = getattr(value, "element_size", None), getattr(value, "nelement", None)
    if callable(element_size) and callable(nelement):
        try:
            return int(element_size()) * int(nelement())
        except (TypeError, ValueError):
            pass
    if isinstance(value, (tuple, list)):
        return sys.getsizeof(value) + sum(size_of(item) for item in value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(size_of(k) + size_of(v) for k, v in value.items())
    return sys.getsizeof(value)


class _Pending:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class Memo:
    """Values computed once per key, kept within `entries` and `max_bytes` (thread-safe).

    relaxml gives each served model one (`context.memo`); `entries` and `max_bytes` come from
    the model's `memo_entries` and `memo_bytes`. A value larger than `max_bytes` on its own is
    returned but not kept.
    """

    def __init__(self, entries: int = ENTRIES, max_bytes: int = BYTES) -> None:
        if entries < 0 or max_bytes < 0:
            raise ValueError("a memo's entries and max_bytes must be at least 0")
        self._values: LRU[Hashable, Any] = LRU(
            entries, max_bytes, cost=lambda _key, value: size_of(value)
        )
        self._pending: dict[Hashable, _Pending] = {}
        self._generation = 0  # counts `clear`s: a value computed before one is not kept
        self._lock = threading.Lock()
        self.hits = 0
        """Calls that found their value kept (or being computed by another call)."""
        self.misses = 0
        """Calls that computed their value."""

    def get(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value kept for `key`, or `compute()`'s, kept for the next call. An exception
        from `compute` reaches the caller (and every call waiting for the same key), and
        nothing is kept. Blocking: in an `async def predict`, `compute` runs on the event loop."""
        with self._lock:
            if key in self._values:
                self.hits += 1
                return cast(V, self._values.get(key))
            pending = self._pending.get(key)
            generation = self._generation
            if pending is None:
                pending = self._pending[key] = _Pending()
                owner = True
                self.misses += 1
            else:
                owner = False
                self.hits += 1
        if not owner:
            pending.done.wait()
            if pending.error is not None:
                raise pending.error
            return cast(V, pending.value)
        try:
            value = compute()
        except BaseException as exc:
            pending.error = exc
            raise
        else:
            pending.value = value
            with self._lock:
                if generation == self._generation:
                    self._values.put(key, value)
            return value
        finally:
            with self._lock:
                if self._pending.get(key) is pending:
                    del self._pending[key]
            pending.done.set()

    def clear(self) -> None:
        """Forget every kept value (relaxml does when a new model version is adopted)."""
        with self._lock:
            self._values.clear()
            self._pending.clear()  # computations under way finish for their callers only
            self._generation += 1

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._values

    @property
    def bytes(self) -> int:
        """The bytes of the values kept, as `size_of` counts them."""
        return int(self._values.held)
