"""`relaxml serve --engine ray` on the command line: which options go with which engine
(`check_engine_options`), and the command itself (`serve_on_ray`), Ray imported only then."""

from __future__ import annotations

from typing import Any

import click
from click.core import ParameterSource

from .._supervise import FATAL_EXIT_CODE, STARTUP_FAILED
from ..settings import Settings

RAY_ONLY = ("replicas", "autoscale", "num_cpus", "num_gpus", "ray_address")


def check_engine_options(
    ctx: click.Context, engine: str, workers: int, replicas: int | None, autoscale: str | None
) -> tuple[int, int] | None:
    """Refuse options that make no sense with `engine`; return `--autoscale`'s bounds."""

    def given(name: str) -> bool:
        source = ctx.get_parameter_source(name)
        if name == "ray_address":  # RAY_ADDRESS may be set for other commands: only the option
            return from_command_line(name)
        return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)

    def from_command_line(name: str) -> bool:
        return ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE

    def flag(name: str) -> str:
        return "--" + name.replace("_", "-")

    if engine != "ray":
        for name in RAY_ONLY:
            if given(name):
                raise click.UsageError(f"{flag(name)} needs --engine ray.")
        return None
    refused = {
        "--workers": (workers != 1 or from_command_line("workers"), "use --replicas"),
        "--reload": (bool(ctx.params.get("reload")), "restart the command instead"),
        "--devices": (given("devices"), "Ray gives each replica its GPUs: use --num-gpus"),
    }
    for option, (wrong, hint) in refused.items():
        if wrong:
            raise click.UsageError(f"{option} cannot be used with --engine ray ({hint}).")
    if replicas is not None and autoscale is not None:
        raise click.UsageError("--replicas and --autoscale cannot be used together.")
    if autoscale is None:
        return None
    low, sep, high = autoscale.partition(":")
    try:
        bounds = (int(low), int(high))
    except ValueError:
        bounds = (-1, -1)
    if not sep or bounds[0] < 0 or bounds[1] < max(1, bounds[0]):
        raise click.UsageError(
            f"--autoscale must be MIN:MAX with 0 <= MIN <= MAX and MAX >= 1, not {autoscale!r}."
        )
    return bounds


def serve_on_ray(target: str, app_dir: str, settings: Settings, options: dict[str, Any]) -> None:
    """`relaxml serve --engine ray`: relaxml._ray, imported only now (Ray is an extra)."""
    from .runtime import RayUnavailable

    try:
        from .serving import CoordinatorFailed, StartupFailed
        from .serving import serve_on_ray as serve
        from .spec import RaySpec

        serve(RaySpec.create(target, app_dir, settings, **options))
    except RayUnavailable as exc:
        raise click.UsageError(str(exc)) from None
    except StartupFailed as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(STARTUP_FAILED) from None
    except CoordinatorFailed as exc:
        click.echo(f"Error: the coordinator failed: {exc}", err=True)
        raise SystemExit(FATAL_EXIT_CODE) from None
