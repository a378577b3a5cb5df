"""Offline runs on Ray Data: `relaxml predict --engine ray` and `relaxml annotate --engine ray`.

The tasks are cut into chunks exactly as `--engine local` cuts them, one dataset row per chunk
(a JSON string, `batches.encode_chunk`), and `map_batches` runs them through a pool of
`EngineOptions.replicas` actors (`ActorPoolStrategy`), each holding one copy of the model
(`batches.ChunkPredictor`) with `num_cpus` (and `num_gpus`) of its own. Answers stream back to
the driver as they are done: `predict` puts them back in order, so its file equals the local
engine's byte for byte; `annotate` hands them, in blocks, to the one writer in the driver.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

from .._offline.annotate import Engine
from .._offline.engines import EngineOptions, ModelSpec
from .._offline.runner import DEFAULT_CHUNK, Outcome
from .._server.loader import load_model_class
from .batches import decode_outcome, encode_chunk, predictor_for
from .reaper import start_reaper, stop_reaper
from .runtime import import_ray, ray_runtime

CHUNKS_PER_BLOCK = 4
"""Chunks per block of the dataset (at least two blocks per copy of the model, when there are
as many chunks): few enough that every copy always has work queued."""


class RayOffline:
    """`--engine ray` for `relaxml predict` and `relaxml annotate`: a local Ray of the
    command's own (shut down with it), or the cluster at `EngineOptions.address`."""

    def predict(
        self,
        spec: ModelSpec,
        tasks: Sequence[dict[str, Any]],
        options: EngineOptions,
        progress: Callable[[int], None],
    ) -> Outcome:
        """Every task's outcome, in order, as `run_model` would give it."""
        if not tasks:
            return Outcome()
        with _runtime(options) as ray:
            return predict_on_ray(ray, spec, tasks, chunk_size(spec), options, progress)

    @contextmanager
    def annotate(self, spec: ModelSpec, options: EngineOptions) -> Iterator[Engine]:
        """The `Engine` of an annotate run; Ray starts when it first has tasks to predict (a
        run with none starts no Ray) and stops when the context ends."""
        with ExitStack() as stack:

            @functools.cache
            def ray() -> Any:
                return stack.enter_context(_runtime(options))

            yield ray_engine(ray, spec, chunk_size(spec), options)


@contextmanager
def _runtime(options: EngineOptions) -> Iterator[Any]:
    """Ray for the command: a local one of its own (watched by a reaper, so it ends with the
    command even if the command is killed), the cluster at the address, or the one running."""
    # Ray Data's own lines stay out of the command's output, unless they are warnings
    os.environ.setdefault("RAY_DATA_LOG_LEVEL", "WARNING")
    logging.getLogger("ray.data._internal.progress").addFilter(_NO_PROGRESS_BAR_NOTICE)
    address = options.address or os.environ.get("RAY_ADDRESS")
    own = not address and not import_ray().is_initialized()
    watcher = start_reaper() if own else None
    try:
        with ray_runtime(address, num_cpus=options.local_cpus()) as ray:  # GPUs: Ray finds them
            yield ray
    finally:
        if watcher is not None:
            stop_reaper(watcher)


class _NoProgressBarNotice(logging.Filter):
    """Drops Ray Data's notice that its progress bars are off (the command draws its own)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Progress bars disabled")


_NO_PROGRESS_BAR_NOTICE = _NoProgressBarNotice()


def chunk_size(spec: ModelSpec) -> int:
    """The tasks of one `predict` call, as the local runner chooses them."""
    return load_model_class(spec.target, spec.app_dir).max_batch_size or DEFAULT_CHUNK


def predict_chunks(
    ray: Any, spec: ModelSpec, tasks: Sequence[dict[str, Any]], size: int, options: EngineOptions
) -> Iterator[tuple[int, Outcome]]:
    """Each chunk's start and outcome, as the actors finish them (in no set order)."""
    if not tasks:
        return
    rows = [
        {"chunk": encode_chunk(start, list(tasks[start : start + size]))}
        for start in range(0, len(tasks), size)
    ]
    with warnings.catch_warnings():  # Ray Data's first context warns of its own defaults
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ray\.")
        context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    wide = max(options.replicas * 2, math.ceil(len(rows) / CHUNKS_PER_BLOCK))
    blocks = min(len(rows), wide)  # every copy fed, no copy started for nothing to do
    dataset = ray.data.from_items(rows, override_num_blocks=blocks)
    remote: dict[str, Any] = {"num_cpus": options.num_cpus}
    if options.num_gpus:
        remote["num_gpus"] = options.num_gpus
    done = dataset.map_batches(
        predictor_for(spec),
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=min(options.replicas, blocks)),
        **remote,
    )
    for row in done.iter_rows():
        yield decode_outcome(str(row["done"]))


def predict_on_ray(
    ray: Any,
    spec: ModelSpec,
    tasks: Sequence[dict[str, Any]],
    size: int,
    options: EngineOptions,
    progress: Callable[[int], None] = lambda n: None,
) -> Outcome:
    """Every task's outcome, in the order of `tasks`; `progress(n)` as chunks come back."""
    found: dict[int, Outcome] = {}
    for start, outcome in predict_chunks(ray, spec, tasks, size, options):
        found[start] = outcome
        progress(len(outcome.entries))
    result = Outcome()
    for start in sorted(found):
        result.extend(found[start])
    return result


def ray_engine(
    ray: Callable[[], Any], spec: ModelSpec, size: int, options: EngineOptions
) -> Engine:
    """The engine of `annotate --engine ray`: the pending tasks are listed first (page by
    page, by the driver), then predicted on Ray (`ray()`, started then); blocks go back to the
    writer as they fill."""

    def predict(
        tasks: Iterator[dict[str, Any]],
        label_config: str | None,
        block: int,
        progress: Callable[[int], None],
    ) -> Iterator[tuple[list[dict[str, Any]], Outcome]]:
        pending = list(tasks)
        if not pending:
            return
        configured = dataclasses.replace(spec, label_config=label_config)
        part: list[dict[str, Any]] = []
        outcome = Outcome()
        for start, done in predict_chunks(ray(), configured, pending, size, options):
            part += pending[start : start + len(done.entries)]
            outcome.extend(done)
            progress(len(done.entries))
            if len(part) >= block:
                yield part, outcome
                part, outcome = [], Outcome()
        if part:
            yield part, outcome

    return predict
