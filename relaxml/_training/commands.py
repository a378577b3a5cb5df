"""`relaxml versions list` and `relaxml versions use`: a data directory's model versions."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .._datadir.sqlite import FILENAME
from .versions import VersionStore

data_dir_option = click.option(
    "--data-dir",
    envvar="RELAXML_DATA_DIR",
    show_envvar=True,
    default="relaxml-data",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory of relaxml's database (outbox, training queue, versions) and artifacts.",
)
"""`--data-dir`, as `relaxml serve` and the versions commands take it."""


@click.group()
def versions() -> None:
    """List the model versions of a data directory, or choose the one to serve."""


def _store(data_dir: str) -> VersionStore:
    database = Path(data_dir) / FILENAME
    if not database.is_file():
        raise click.UsageError(f"{data_dir} holds no relaxml database ({FILENAME}).")
    return VersionStore(database)


_project_option = click.option(
    "--project",
    type=click.IntRange(min=0),
    default=None,
    help="The Label Studio project id, for a model with per_project = True.",
)


def _scoped(store: VersionStore, project: int | None) -> VersionStore:
    return store if project is None else store.for_project(str(project))


@versions.command("list")
@data_dir_option
@_project_option
def versions_list(data_dir: str, project: int | None) -> None:
    """Print every version, oldest first; the current one is marked with *."""
    owner = _store(data_dir)
    store = _scoped(owner, project)
    try:
        current = store.current()
        for record in store.history():
            mark = "*" if record.version == current else " "
            saved = "artifacts" if record.path else "no artifacts"
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created_at))
            click.echo(f"{mark} {record.version}  {when}  {saved}")
        projects = owner.projects() if project is None else []
        if projects:
            click.echo(f"projects with versions of their own (--project): {', '.join(projects)}")
    finally:
        owner.close()


@versions.command("use")
@click.argument("version")
@data_dir_option
@_project_option
def versions_use(version: str, data_dir: str, project: int | None) -> None:
    """Make VERSION current: running servers swap to it within seconds (a rollback)."""
    owner = _store(data_dir)
    store = _scoped(owner, project)
    try:
        store.use(version)
    except KeyError:
        known = ", ".join(r.version for r in store.history()) or "none"
        raise click.UsageError(f"Unknown version {version!r} (known: {known}).") from None
    finally:
        owner.close()
    click.echo(f"{version} is now current; running servers will swap to it.")
