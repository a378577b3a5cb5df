"""`relaxml init NAME`: a new backend project, ready to test, serve and ship."""

from __future__ import annotations

from pathlib import Path

import click

from .generate import TEMPLATES, Names, ScaffoldError, create_project


@click.command()
@click.argument("name")
@click.option(
    "--template",
    type=click.Choice(TEMPLATES),
    default="blank",
    show_default=True,
    help="What the model starts as: an empty model, or a small working one of that kind.",
)
def init(name: str, template: str) -> None:
    """Create NAME/, a new ML backend project: model.py (a documented LabelStudioModel),
    label_config.xml, tasks.json, tests/ (with relaxml.testing), requirements.txt, a
    Dockerfile, a docker-compose.yml with Label Studio beside it, and a README.

    Templates: blank (an empty model), image-detection (RectangleLabels), text-classification
    (Choices, trained from annotations), ner (Labels spans, trained from annotations),
    interactive (a smart keypoint gets a brush mask).
    """
    directory = Path(name)
    try:
        written = create_project(directory, template)
    except ScaffoldError as error:
        raise click.UsageError(str(error)) from None
    for path in written:
        click.echo(f"  {path}")
    class_name = Names.of(directory.name).class_name
    click.echo(
        f"\nNext:\n  cd {directory}\n  pytest\n"
        f"  relaxml serve model.py:{class_name}\n"
        f"  relaxml predict model.py:{class_name} --tasks tasks.json --config label_config.xml"
    )
