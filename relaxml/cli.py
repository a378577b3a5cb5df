"""The `relaxml` command line: `relaxml serve module:Class`."""

from __future__ import annotations

import os
from pathlib import Path

import click
import uvicorn

from .__about__ import __version__
from ._datadir.layout import DataDirError, model_identity, prepare
from ._datadir.workers import forget_failure, startup_failure, workers_dir
from ._doctor import command as doctor_command
from ._offline import commands as offline_commands
from ._offline.engines import ENGINES, OtherEngine
from ._ray.command import check_engine_options, serve_on_ray
from ._scaffold import commands as scaffold_commands
from ._server.app import create_app
from ._server.arenas import limit_malloc_arenas
from ._server.collector import relax_collector
from ._server.loader import LoadError, load_model_class
from ._supervise import STARTUP_FAILED
from ._training import commands as versions_commands
from .logs import configure_logging
from .model import check_attributes
from .settings import Settings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
SERVE_ENGINES = ("local", "ray")
"""Where `relaxml serve` runs the model (`predict` and `annotate` take `_offline.engines`)."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", "-V", prog_name="relaxml")
def main() -> None:
    """relaxml: put any model behind Label Studio."""


_data_dir_option = versions_commands.data_dir_option


@main.command()
@click.argument("target")
@click.option(
    "--host",
    default="0.0.0.0",
    show_default=True,
    envvar="RELAXML_HOST",
    show_envvar=True,
    help="Address to listen on. Label Studio must be able to reach it.",
)
@click.option(
    "--port",
    default=9090,
    show_default=True,
    type=click.IntRange(0, 65535),
    envvar="RELAXML_PORT",
    show_envvar=True,
    help="Port to listen on.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(min=1),
    envvar="RELAXML_WORKERS",
    show_envvar=True,
    help="Worker processes; each loads its own copy of the model.",
)
@click.option(
    "--reload",
    is_flag=True,
    envvar="RELAXML_RELOAD",
    show_envvar=True,
    help="Restart when the model's source changes (development only).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(LOG_LEVELS),
    envvar="RELAXML_LOG_LEVEL",
    show_envvar=True,
    help="Logging level.",
)
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    envvar="RELAXML_APP_DIR",
    show_envvar=True,
    type=click.Path(exists=True, file_okay=False),
    help="Directory to import the model module from.",
)
@click.option(
    "--basic-auth-user",
    envvar="RELAXML_BASIC_AUTH_USER",
    show_envvar=True,
    metavar="USER",
    help="Require Basic Auth with this user name (set the same in Label Studio).",
)
@click.option(
    "--basic-auth-pass",
    envvar="RELAXML_BASIC_AUTH_PASS",
    show_envvar=True,
    metavar="PASSWORD",
    help="The Basic Auth password. Prefer the environment variable to the command line.",
)
@click.option(
    "--delivery",
    envvar="RELAXML_DELIVERY",
    show_envvar=True,
    type=click.Choice(("auto", "inline", "background")),
    help="How predictions reach Label Studio. Default: the model's `delivery` (auto).",
)
@click.option(
    "--devices",
    envvar="RELAXML_DEVICES",
    show_envvar=True,
    metavar="LIST",
    help="Comma-separated devices, one per worker round-robin, as the model's self.device "
    "(e.g. cuda:0,cuda:1). Default: cuda when torch reports a GPU, else cpu.",
)
@_data_dir_option
@click.option(
    "--engine",
    type=click.Choice(SERVE_ENGINES),
    default="local",
    show_default=True,
    envvar="RELAXML_ENGINE",
    show_envvar=True,
    help="local: uvicorn on this machine; ray: a Ray Serve deployment (the relaxml[ray] extra).",
)
@click.option(
    "--replicas",
    type=click.IntRange(min=1),
    envvar="RELAXML_REPLICAS",
    show_envvar=True,
    help="--engine ray: Serve replicas, each with its own copy of the model. Default: 1.",
)
@click.option(
    "--autoscale",
    metavar="MIN:MAX",
    envvar="RELAXML_AUTOSCALE",
    show_envvar=True,
    help="--engine ray: let Serve scale between MIN and MAX replicas with the load.",
)
@click.option(
    "--num-cpus",
    type=click.FloatRange(min=0),
    envvar="RELAXML_NUM_CPUS",
    show_envvar=True,
    help="--engine ray: CPUs Ray reserves for each replica and the coordinator. Default: 1.",
)
@click.option(
    "--num-gpus",
    type=click.FloatRange(min=0),
    envvar="RELAXML_NUM_GPUS",
    show_envvar=True,
    help="--engine ray: GPUs for each replica and the coordinator (fractions share one).",
)
@click.option(
    "--ray-address",
    envvar="RAY_ADDRESS",
    show_envvar=True,
    metavar="ADDRESS",
    help="--engine ray: join this Ray cluster. Default: a local Ray owned by this command.",
)
@click.pass_context
def serve(
    ctx: click.Context,
    target: str,
    host: str,
    port: int,
    workers: int,
    reload: bool,
    log_level: str,
    app_dir: str,
    basic_auth_user: str | None,
    basic_auth_pass: str | None,
    delivery: str | None,
    devices: str | None,
    data_dir: str,
    engine: str,
    replicas: int | None,
    autoscale: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    ray_address: str | None,
) -> None:
    """Serve the model TARGET to Label Studio.

    TARGET is "module:Class", "path/to/file.py:Class", or a module that defines exactly one
    LabelStudioModel subclass. Every option can also be set by the environment variable shown
    in brackets; the other RELAXML_* settings are listed in docs/settings.md.

    \b
    Examples:
      relaxml serve mymodel:Squirrel
      relaxml serve models/squirrel.py:Squirrel --port 9091
      RELAXML_BASIC_AUTH_PASS=s3cret relaxml serve mymodel --basic-auth-user ls
      relaxml serve mymodel:Squirrel --engine ray --replicas 2 --num-cpus 2
    """
    if reload and workers > 1:
        raise click.UsageError("--reload and --workers cannot be used together.")
    scale = check_engine_options(ctx, engine, workers, replicas, autoscale)
    # Be restarted when background work cannot go on, unless RELAXML_EXIT_ON_FATAL says no.
    exit_on_fatal = None if os.environ.get("RELAXML_EXIT_ON_FATAL") else True
    try:
        model_class = load_model_class(target, app_dir)
        check_attributes(model_class)
        settings = Settings.from_env(
            basic_auth_user=basic_auth_user,
            basic_auth_pass=basic_auth_pass,
            delivery=delivery,
            devices=devices,
            data_dir=data_dir,
            exit_on_fatal=exit_on_fatal,
        )
    except (LoadError, TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    try:
        prepare(Path(data_dir), model_identity(model_class))
    except DataDirError as exc:
        if exc.usage:
            raise click.UsageError(str(exc)) from None
        raise click.ClickException(str(exc)) from None
    configure_logging(log_level)
    if engine == "ray":
        ray_options = {
            "log_level": log_level,
            "host": host,
            "port": port,
            "replicas": replicas or 1,
            "autoscale": scale,
            "num_cpus": 1.0 if num_cpus is None else num_cpus,
            "num_gpus": num_gpus or 0.0,
            "address": ray_address or None,
        }
        serve_on_ray(target, app_dir, settings, ray_options)
        return
    limit_malloc_arenas()
    relax_collector()  # after the model's module: its own collector settings win
    options = {
        "host": host,
        "port": port,
        "log_config": None,
        "log_level": log_level,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if workers == 1 and not reload:
        uvicorn.run(create_app(model_class, settings), **options)  # type: ignore[arg-type]
        return
    # Worker processes, spawned (never forked), rebuild the app from the environment
    # (relaxml._server.factory): this process never imports torch nor initialises CUDA.
    os.environ.update(
        RELAXML_TARGET=target,
        RELAXML_APP_DIR=str(Path(app_dir).resolve()),
        RELAXML_LOG_LEVEL=log_level,
        RELAXML_DATA_DIR=str(Path(data_dir).resolve()),
        RELAXML_EXIT_ON_FATAL="1" if settings.exit_on_fatal else "0",
        RELAXML_WORKERS=str(workers),
    )
    for name, value in (
        ("RELAXML_BASIC_AUTH_USER", basic_auth_user),
        ("RELAXML_BASIC_AUTH_PASS", basic_auth_pass),
        ("RELAXML_DELIVERY", delivery),
        ("RELAXML_DEVICES", devices),
    ):
        if value:
            os.environ[name] = value
    module_part = target.rpartition(":")[0] if ":" in target else target
    source = Path(module_part).resolve().parent if module_part.endswith(".py") else Path(app_dir)
    slots = workers_dir(Path(data_dir))
    forget_failure(slots)
    uvicorn.run(
        "relaxml._server.factory:app_from_env",
        factory=True,
        workers=workers,
        reload=reload,
        reload_dirs=[str(source.resolve())] if reload else None,
        **options,  # type: ignore[arg-type]
    )
    failure = startup_failure(slots)
    if failure is not None:  # uvicorn stopped every worker but exits 0: say it failed
        click.echo(f"Error: a worker failed to start: {failure}", err=True)
        raise SystemExit(STARTUP_FAILED)


def _ray_offline() -> OtherEngine:
    """`--engine ray` of `predict` and `annotate`: Ray imported only now (or a clear error)."""
    from ._ray.offline import RayOffline
    from ._ray.runtime import import_ray

    import_ray()
    return RayOffline()


ENGINES["ray"] = _ray_offline

main.add_command(versions_commands.versions)
main.add_command(offline_commands.predict)
main.add_command(offline_commands.check)
main.add_command(offline_commands.annotate)
main.add_command(scaffold_commands.init)
main.add_command(doctor_command.doctor)
