"""Out of memory: a `predict` call that runs out of memory is split in halves and retried.

A call on several tasks that raises torch's `OutOfMemoryError` (recognized by its name and
module, so torch is never imported here), or one of the model's `oom_errors`, is retried on each
half of its tasks, and so on down to one task. A task that runs out of memory alone gets an
`out_of_memory` entry instead of a prediction: `{"error": "out_of_memory", "detail": ...}`,
an entry without `result`, which Label Studio skips. Inline requests and background jobs both
predict through `split_on_oom`; each decides what such an entry becomes (docs/errors.md).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeGuard, TypeVar

from ._metrics import Metrics
from .errors import describe

logger = logging.getLogger(__name__)

OUT_OF_MEMORY = "out_of_memory"
"""The error code of a task that ran out of memory alone."""

T = TypeVar("T")
E = TypeVar("E")


def is_out_of_memory(exc: BaseException, oom_errors: tuple[type[BaseException], ...] = ()) -> bool:
    """Whether `exc` is an out-of-memory error: one of `oom_errors`, or torch's
    `OutOfMemoryError` (`torch.OutOfMemoryError`, `torch.cuda.OutOfMemoryError`) or a subclass."""
    if oom_errors and isinstance(exc, oom_errors):
        return True
    return any(
        cls.__name__ == "OutOfMemoryError" and cls.__module__.partition(".")[0] == "torch"
        for cls in type(exc).__mro__
    )


def oom_entry(detail: str) -> dict[str, Any]:
    """The entry of a task that ran out of memory alone."""
    return {"error": OUT_OF_MEMORY, "detail": detail}


def is_oom_entry(entry: object) -> TypeGuard[dict[str, Any]]:
    """Whether `entry` is an `oom_entry` (a model's own entries always have `result`)."""
    return type(entry) is dict and entry.get("error") == OUT_OF_MEMORY and "result" not in entry


async def split_on_oom(
    call: Callable[[list[T]], Awaitable[list[E]]],
    tasks: Sequence[T],
    *,
    oom_errors: tuple[type[BaseException], ...],
    source: str,
    metrics: Metrics,
    mode: str,
    task_id: Callable[[T], object] = lambda task: getattr(task, "id", None),
) -> list[E | dict[str, Any]]:
    """`call(tasks)`, or, when it runs out of memory, `call` on each half of `tasks`, down to
    one task; a task that runs out of memory alone gets an `oom_entry`. Other errors propagate.

    `relaxml_oom_splits_total{mode}` counts the calls split, `relaxml_oom_failures_total{mode}`
    the tasks that ran out of memory alone.
    """
    batch = list(tasks)
    try:
        return list(await call(batch))
    except Exception as exc:
        if not is_out_of_memory(exc, oom_errors):
            raise
        if len(batch) == 1:
            metrics.inc("relaxml_oom_failures_total", mode=mode)
            detail = (
                f"{source} ran out of memory on task {task_id(batch[0])} alone: {describe(exc)}"
            )
            logger.warning("%s", detail)
            return [oom_entry(detail)]
        half = (len(batch) + 1) // 2
        metrics.inc("relaxml_oom_splits_total", mode=mode)
        logger.info(
            "%s ran out of memory on %d tasks: retrying %d and %d",
            source,
            len(batch),
            half,
            len(batch) - half,
        )
    kwargs: dict[str, Any] = {
        "oom_errors": oom_errors,
        "source": source,
        "metrics": metrics,
        "mode": mode,
        "task_id": task_id,
    }
    first = await split_on_oom(call, batch[:half], **kwargs)
    return first + await split_on_oom(call, batch[half:], **kwargs)
