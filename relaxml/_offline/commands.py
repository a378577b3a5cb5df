"""`relaxml predict` and `relaxml check`: a model over a tasks file, and a predictions file
against a label config, with no Label Studio; `relaxml annotate`: a model over a project."""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path
from typing import Any

import click

from .._server.loader import LoadError, load_model_class
from ..labels.labelconfig import LabelConfigError, parse_label_config
from ..labels.validation import Problem, check_prediction
from ..labelstudio.client import LabelStudioClient
from ..model import check_attributes
from ..settings import Settings
from .annotate import IMPORT_SIZE, AnnotateError, Annotator, Engine, local_engine
from .current import CurrentVersionError, stored_version
from .engines import ModelSpec, build_model, engine_options, options_from, other_engine
from .runner import run_model
from .tasksfile import TasksFileError, read_tasks, write_import

_file = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.argument("target")
@click.option(
    "--tasks",
    "tasks_path",
    type=_file,
    required=True,
    help="Tasks as Label Studio exports or imports them: a JSON list, an object or JSON lines.",
)
@click.option(
    "--config",
    "config_path",
    type=_file,
    help="The project's labeling config (XML); every prediction is checked against it.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="predictions.json",
    show_default=True,
    help="Where to write the tasks with their predictions, in Label Studio's import format.",
)
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    help="Directory put first on sys.path to import TARGET's module.",
)
@engine_options
def predict(
    target: str,
    tasks_path: Path,
    config_path: Path | None,
    out_path: Path,
    app_dir: str,
    **engine_options: Any,
) -> None:
    """Run TARGET (`module:Class` or `path/file.py:Class`) on a tasks file, with no Label
    Studio, and write the tasks with their predictions, ready to import.

    Each prediction is checked against --config as Label Studio's editor reads it; problems are
    listed and make the exit status 1 (the file is written all the same), as does a task that
    runs out of memory alone or whose predict raises alone (a chunk out of memory or raising is
    split in halves, down to the tasks that fail alone). Task media is read as the server reads
    it: files under LOCAL_FILES_DOCUMENT_ROOT, plain URLs, and Label Studio's files when
    LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY are set. With --engine ray the tasks are
    predicted on Ray Data by --replicas copies of the model, and the file is the same.
    """
    options = options_from(**engine_options)
    try:
        model_class = load_model_class(target, app_dir)
        check_attributes(model_class)
        settings = Settings.from_env()
    except (LoadError, TypeError, ValueError) as error:
        raise click.UsageError(str(error)) from None
    config = _read_config(config_path)
    try:
        tasks = read_tasks(tasks_path)
    except (TasksFileError, UnicodeDecodeError) as error:
        raise click.BadParameter(str(error), param_hint="--tasks") from None
    spec = ModelSpec(target, app_dir, settings, label_config=config)
    other = None if options.name == "local" else other_engine(options)
    with click.progressbar(length=len(tasks), label="Predicting", file=sys.stderr) as bar:
        if other is None:
            model = build_model(spec)
            version = model.model_version
            outcome = run_model(model, tasks, config, settings, progress=bar.update)
        else:
            version = model_class.model_version
            outcome = other.predict(spec, tasks, options, bar.update)
    written = write_import(out_path, tasks, outcome.entries)
    for index in sorted({*outcome.problems, *outcome.failed}):
        if index in outcome.problems:
            _report(f"task {tasks[index]['id']}", outcome.problems[index])
        if index in outcome.failed:
            click.echo(f"task {tasks[index]['id']}: {outcome.failed[index]}", err=True)
    click.echo(
        f"{written} predictions for {len(tasks)} tasks written to {out_path} "
        f"(model version {version})",
        err=True,
    )
    if outcome.problems or outcome.failed:
        raise SystemExit(1)
    if config is None:
        click.echo("not checked: pass --config to check the predictions", err=True)


@click.command()
@click.argument("predictions_path", metavar="PREDICTIONS", type=_file)
@click.option(
    "--config",
    "config_path",
    type=_file,
    required=True,
    help="The project's labeling config (XML).",
)
def check(predictions_path: Path, config_path: Path) -> None:
    """Check a file of tasks with predictions (Label Studio's import or export format, as
    `relaxml predict` writes it) against a labeling config, as Label Studio's editor reads it.

    Lists every problem with its task and item; the exit status is 1 when there is any.
    """
    config = _read_config(config_path)
    assert config is not None
    try:
        tasks = read_tasks(predictions_path)
    except (TasksFileError, UnicodeDecodeError) as error:
        raise click.BadParameter(str(error), param_hint="PREDICTIONS") from None
    count = failed = 0
    for task in tasks:
        predictions: Any = task.get("predictions") or []
        if not isinstance(predictions, list):
            predictions = [predictions]
        for number, prediction in enumerate(predictions):
            count += 1
            problems = check_prediction(config, prediction)
            if problems:
                failed += 1
                _report(f"task {task['id']}, prediction {number + 1}", problems)
    click.echo(f"{count - failed} of {count} predictions fit the label config", err=True)
    if failed:
        raise SystemExit(1)


@click.command()
@click.argument("target")
@click.option("--project", "project_id", type=int, required=True, help="The Label Studio project.")
@engine_options
@click.option(
    "--import-size",
    type=click.IntRange(min=1),
    default=IMPORT_SIZE,
    show_default=True,
    help="Tasks predicted, then imported into Label Studio, per bulk request.",
)
@click.option(
    "--app-dir",
    default=".",
    show_default=True,
    help="Directory put first on sys.path to import TARGET's module.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A server's data directory: its current version (trained) is loaded and predicts.",
)
def annotate(
    target: str,
    project_id: int,
    import_size: int,
    app_dir: str,
    data_dir: Path | None,
    **engine_options: Any,
) -> None:
    """Predict, with TARGET (`module:Class` or `path/file.py:Class`), every task of a Label
    Studio project that has no prediction of the model's version yet, and store the
    predictions in Label Studio (LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY).

    Tasks are read page by page and imported in bulk; running it again, or after a crash, stores
    only what is missing, never a prediction twice. A task whose prediction fails is listed
    and the rest goes on; the exit status is then 1. With --data-dir, the model is the
    version that data directory serves. With --engine ray the tasks are predicted on Ray Data
    by --replicas copies of the model; they are stored from here all the same.
    """
    options = options_from(**engine_options)
    try:
        model_class = load_model_class(target, app_dir)
        check_attributes(model_class)
        settings = Settings.from_env()
        if not settings.label_studio_url:
            raise ValueError("LABEL_STUDIO_URL must be set (and LABEL_STUDIO_API_KEY)")
        version = model_class.model_version
        if data_dir is not None:
            version = stored_version(model_class, data_dir, project_id) or version
    except (LoadError, TypeError, ValueError, CurrentVersionError) as error:
        raise click.UsageError(str(error)) from None
    spec = ModelSpec(target, app_dir, settings, data_dir=data_dir, project_id=project_id)
    client = LabelStudioClient(settings.label_studio_url, settings.label_studio_api_key)
    with closing(client):
        if options.name != "local":
            engine = other_engine(options).annotate(spec, options)
        else:
            try:
                model = build_model(spec)
            except CurrentVersionError as error:
                raise click.UsageError(str(error)) from None
            version = model.model_version
            engine = nullcontext(local_engine(model, settings))
        _annotate(client, project_id, version, engine, import_size)


def _annotate(
    client: LabelStudioClient,
    project_id: int,
    version: str,
    engine: AbstractContextManager[Engine],
    import_size: int,
) -> None:
    """Run an `Annotator` with a progress bar (the engine started once Label Studio answered);
    list the failed tasks and the summary."""
    try:
        with click.progressbar(length=1, label="Annotating", file=sys.stderr) as bar:
            annotator = Annotator(client, project_id, version, import_size=import_size)
            bar.length = max(1, annotator.count())
            annotator.progress = bar.update
            with engine as predict:
                summary = annotator.run(predict)
    except AnnotateError as error:
        raise click.ClickException(str(error)) from None
    for task_id, reason in sorted(summary.failed.items()):
        click.echo(f"task {task_id}: {reason}", err=True)
    click.echo(f"{summary.line()} (model version {version})", err=True)
    if summary.failed:
        raise SystemExit(1)


def _read_config(path: Path | None) -> str | None:
    if path is None:
        return None
    config = path.read_text(encoding="utf-8")
    try:
        parse_label_config(config)
    except LabelConfigError as error:
        raise click.BadParameter(str(error), param_hint="--config") from None
    return config


def _report(where: str, problems: list[Problem]) -> None:
    for problem in problems:
        click.echo(f"{where}: {problem}", err=True)
