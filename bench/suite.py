"""What every benchmark module gets: the mode, the servers it may start, and the load generator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import BENCH_DIR, Pinning, ServerSpec, python
from incumbent import Incumbent
from load import LoadGenerator

RELAXML = "relaxml"
RELAXML_ASYNC = "relaxml-async"
LIMIT = "starlette-limit"
FLOOR = "starlette-floor"
INCUMBENT = "incumbent"
INCUMBENT_TEMPLATE = "incumbent-template"

NOT_GIVEN = "not measured (no checkout given)"


# The models the floor serves too (bench/floor.py --model NAME).
FLOOR_MODELS = {"Trivial": "trivial", "Loaded": "loaded"}


def relaxml_spec(model: str, data_dir: Path, env: dict[str, str] | None = None) -> ServerSpec:
    """`python -m relaxml serve bench/models.py:<model>` with relaxml's defaults.

    Only its state directory (the outbox database) moves to the run's scratch directory;
    `env` adds settings (e.g. RELAXML_DELIVERY) where a benchmark needs them.
    """
    target = f"{(BENCH_DIR / 'models.py').relative_to(BENCH_DIR.parent)}:{model}"
    argv = [python(), "-m", "relaxml", "serve", target, "--host", "{host}", "--port", "{port}"]
    env = {"RELAXML_DATA_DIR": str(data_dir), **(env or {})}
    return ServerSpec(f"relaxml-{model}", argv, env=env)


def limit_spec(model: str = "Trivial") -> ServerSpec:
    """The limit of the stack (bench/limit.py): bare Starlette, predict on the event loop, no
    access log."""
    argv = [python(), str(BENCH_DIR / "limit.py"), "--host", "{host}", "--port", "{port}"]
    if model != "Trivial":
        argv += ["--model", FLOOR_MODELS[model]]
    return ServerSpec("starlette-limit" if model == "Trivial" else f"starlette-limit-{model}", argv)


def floor_spec(model: str = "Trivial") -> ServerSpec:
    """The bare Starlette floor (bench/floor.py) under uvicorn, serving `model`."""
    argv = [python(), str(BENCH_DIR / "floor.py"), "--host", "{host}", "--port", "{port}"]
    if model != "Trivial":
        argv += ["--model", FLOOR_MODELS[model]]
    return ServerSpec("starlette-floor" if model == "Trivial" else f"starlette-floor-{model}", argv)


@dataclass
class Suite:
    """One run of the suite: its mode, scratch directory, pinning, load generator, incumbent."""

    quick: bool
    workdir: Path
    pinning: Pinning
    load: LoadGenerator
    incumbent: Incumbent | None = None
    incumbent_note: str = NOT_GIVEN
    notes: list[str] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"

    def scale(self, quick: Any, full: Any) -> Any:
        """`quick` in quick mode, else `full`."""
        return quick if self.quick else full

    def servers(self, model: str, *, limit: bool = False) -> dict[str, ServerSpec | None]:
        """relaxml, the Starlette floor (Trivial and Loaded only) and the incumbent (None: not
        given). With `limit`, also the limit of the stack, and for `Trivial` relaxml serving
        the same model written `async def` and the incumbent serving it as its default
        template does (`Template`)."""
        data_dir = self.workdir / f"relaxml-data-{model}"  # one model per data directory
        specs: dict[str, ServerSpec | None] = {RELAXML: relaxml_spec(model, data_dir)}
        if limit and model == "Trivial":
            async_dir = self.workdir / "relaxml-data-TrivialAsync"
            specs[RELAXML_ASYNC] = relaxml_spec("TrivialAsync", async_dir)
        if limit and model in FLOOR_MODELS:
            specs[LIMIT] = limit_spec(model)
        if model in FLOOR_MODELS:
            specs[FLOOR] = floor_spec(model)
        specs[INCUMBENT] = self.incumbent.spec(model) if self.incumbent else None
        if limit and model == "Trivial":  # and the model its `label-studio-ml create` writes
            specs[INCUMBENT_TEMPLATE] = self.incumbent.spec("Template") if self.incumbent else None
        return specs
