"""Where an offline run's model runs: `--engine local` (this process) or another engine.

`ModelSpec` says how to build the model anywhere (`build_model`: the class imported from the
target, constructed on its device, a data directory's current version loaded, warmed up), so an
engine that runs it in other processes builds it there as the command would here.
`EngineOptions` are the options of `--engine` and its width. An engine other than `local` is
an `OtherEngine`, registered in `ENGINES` by the entry point (`relaxml.cli` registers `ray`,
imported only when asked for), since the engines live above this layer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from .._devices import device_for
from .._server.loader import load_model_class
from ..model import LabelStudioModel, construct
from ..settings import Settings
from .annotate import Engine
from .current import load_current
from .runner import Outcome

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelSpec:
    """What builds the model as the command would: the target, where to import it from, the
    settings, the label config it is set up with, and a data directory's current version."""

    target: str
    app_dir: str
    settings: Settings
    label_config: str | None = None
    data_dir: Path | None = None
    project_id: int = 0


def build_model(spec: ModelSpec) -> LabelStudioModel:
    """The model of `spec`, constructed on its device, its current version loaded (with a
    data directory), warmed up. Raises `CurrentVersionError` when that version cannot load."""
    model_class = load_model_class(spec.target, spec.app_dir)
    model = construct(model_class, device_for(spec.settings.device_list, 0))
    if spec.data_dir is not None:
        load_current(model, spec.data_dir, spec.project_id)
    model.warmup()
    return model


@dataclass(frozen=True)
class EngineOptions:
    """`--engine` and, for another engine than `local`, where and how wide: the cluster (None:
    one of the command's own), the copies of the model, the CPUs and GPUs each reserves."""

    name: str = "local"
    address: str | None = None
    replicas: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0

    def local_cpus(self) -> int:
        """Logical CPUs of a cluster of the command's own: the machine's, and at least one
        beyond the replicas', so the driver's side never waits for a CPU the copies hold."""
        return max(os.cpu_count() or 1, math.ceil(self.replicas * self.num_cpus) + 1)


class OtherEngine(Protocol):
    """An engine beyond `local`: what `relaxml predict` and `relaxml annotate` ask of it."""

    def predict(
        self,
        spec: ModelSpec,
        tasks: Sequence[dict[str, Any]],
        options: EngineOptions,
        progress: Callable[[int], None],
    ) -> Outcome:
        """Every task's outcome, in order, as `run_model` would give it."""
        ...

    def annotate(self, spec: ModelSpec, options: EngineOptions) -> AbstractContextManager[Engine]:
        """The `Engine` of an annotate run, usable while the context lasts."""
        ...


ENGINES: dict[str, Callable[[], OtherEngine]] = {}
"""The engines beyond `local`, by name: a function that imports and returns one."""


def engine_options(command: F) -> F:
    """The options `--engine`, `--replicas`, `--num-cpus`, `--num-gpus` and `--ray-address`
    of a command (given to it as keyword arguments, for `options_from`)."""
    for option in reversed(
        [
            click.option(
                "--engine",
                type=click.Choice(["local", "ray"]),
                default="local",
                show_default=True,
                help="Where the model runs: `local`, in this process; `ray`, on Ray Data, one copy "
                "per actor (needs the relaxml[ray] extra).",
            ),
            click.option(
                "--replicas",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="--engine ray: copies of the model, one per Ray actor.",
            ),
            click.option(
                "--num-cpus",
                type=click.FloatRange(min=0, min_open=True),
                default=1.0,
                show_default=True,
                help="--engine ray: CPUs each copy reserves (fractions allowed).",
            ),
            click.option(
                "--num-gpus",
                type=click.FloatRange(min=0),
                default=0.0,
                show_default=True,
                help="--engine ray: GPUs each copy reserves (fractions allowed).",
            ),
            click.option(
                "--ray-address",
                envvar="RAY_ADDRESS",
                default=None,
                help="--engine ray: an existing Ray cluster (or RAY_ADDRESS); default: a local Ray "
                "of the command's own, shut down with it.",
            ),
        ]
    ):
        command = option(command)
    return command


def options_from(
    engine: str, replicas: int, num_cpus: float, num_gpus: float, ray_address: str | None
) -> EngineOptions:
    """The `EngineOptions` of the values `engine_options` gave a command."""
    return EngineOptions(engine, ray_address or None, replicas, num_cpus, num_gpus)


def other_engine(options: EngineOptions) -> OtherEngine:
    """The engine `options` name (not `local`), imported now; a usage error when it cannot
    be (Ray not installed: the message says how to install it)."""
    try:
        return ENGINES[options.name]()
    except KeyError:
        raise click.UsageError(f"--engine {options.name} is not available here") from None
    except RuntimeError as error:  # Ray not installed: say how to install it
        raise click.UsageError(str(error)) from None
