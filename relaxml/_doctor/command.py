"""`relaxml doctor`: check a Label Studio and backend setup, one line per check."""

from __future__ import annotations

import os

import click

from .._redaction import remember
from ..settings import Settings
from . import backend, records, studio
from .found import Found
from .report import Report

CHECKS = (
    studio.label_studio,
    studio.api_key,
    studio.legacy_tokens,
    studio.project,
    studio.media,
    backend.backend_here,
    backend.setup_here,
    records.ml_backends,
    records.label_studio_reaches,
    records.event_webhook,
    records.model_version,
    records.basic_auth,
)
_OWN_OPTIONS = (
    "LABEL_STUDIO_URL",
    "LABEL_STUDIO_API_KEY",
    "RELAXML_BASIC_AUTH_USER",
    "RELAXML_BASIC_AUTH_PASS",
)


@click.command()
@click.option(
    "--url",
    envvar="LABEL_STUDIO_URL",
    show_envvar=True,
    metavar="URL",
    help="Label Studio's address, as the backend reaches it.",
)
@click.option(
    "--api-key",
    envvar="LABEL_STUDIO_API_KEY",
    show_envvar=True,
    metavar="KEY",
    help="A personal access token or legacy token. Prefer the environment variable.",
)
@click.option(
    "--project",
    "project_id",
    type=click.IntRange(min=1),
    metavar="ID",
    help="The project to check (the number in its URL): label config, media, ML backends.",
)
@click.option(
    "--backend",
    "backend_url",
    metavar="URL",
    help="The backend's address from here. Default: the project's ML backend in Label Studio.",
)
@click.option(
    "--basic-auth-user",
    envvar="RELAXML_BASIC_AUTH_USER",
    show_envvar=True,
    metavar="USER",
    help="The backend's Basic Auth user, to call its /health and /setup.",
)
@click.option(
    "--basic-auth-pass",
    envvar="RELAXML_BASIC_AUTH_PASS",
    show_envvar=True,
    metavar="PASSWORD",
    help="The backend's Basic Auth password. Prefer the environment variable.",
)
def doctor(
    url: str | None,
    api_key: str | None,
    project_id: int | None,
    backend_url: str | None,
    basic_auth_user: str | None,
    basic_auth_pass: str | None,
) -> None:
    """Check that Label Studio, the key, a project, its media and the backend fit together.

    One line per check: ok, warn, FAIL (with a fix) or skip (an earlier check failed or an
    option is missing), then a summary. The exit status is 1 when a check failed. The key and
    the password are never printed. See docs/troubleshooting.md.

    \b
    Examples:
      LABEL_STUDIO_API_KEY=... relaxml doctor --url http://localhost:8080
      relaxml doctor --project 3 --backend http://localhost:9090
    """
    remember(api_key, pinned=True)
    remember(basic_auth_pass, pinned=True)
    if bool(basic_auth_user) != bool(basic_auth_pass):
        raise click.UsageError(
            "Basic Auth needs both --basic-auth-user and --basic-auth-pass "
            "(or RELAXML_BASIC_AUTH_USER and RELAXML_BASIC_AUTH_PASS)"
        )
    environ = {k: v for k, v in os.environ.items() if k not in _OWN_OPTIONS}
    try:
        settings = Settings.from_env(environ)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    found = Found(
        url=url or None,
        api_key=api_key or None,
        project_id=project_id,
        backend_url=backend_url.rstrip("/") if backend_url else None,
        basic_auth=(basic_auth_user, basic_auth_pass)
        if basic_auth_user and basic_auth_pass
        else None,
        settings=settings,
    )
    report = Report(click.echo)
    try:
        for check in CHECKS:
            check(found, report)
    finally:
        found.close()
    click.echo(report.summary())
    if report.failed:
        raise SystemExit(1)
