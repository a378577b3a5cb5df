"""`relaxml doctor` against `FakeLabelStudio` and a backend served by uvicorn in a thread:
a healthy setup passes every check; each misconfiguration fails its line with a fix."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner

from relaxml import Settings, create_app
from relaxml._doctor.report import Line, Report
from relaxml.cli import main
from relaxml.testing import FakeLabelStudio

from .conftest import wait_for
from .support.httpfakes import FakeServer, Reply, Seen
from .support.models import Echo

ROOT = Path(__file__).resolve().parents[1]
IMAGE_CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="kind" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>'
    "</View>"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PASSWORD = "s3cret-backend-pass"


class Other(Echo):
    model_version = "other-7"


@pytest.fixture
def backends(tmp_path: Path) -> Iterator[Any]:
    """Serve models with uvicorn on 127.0.0.1 in threads; each call returns the base URL."""
    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(model: type[Echo] = Echo, **settings: Any) -> str:
        settings.setdefault("data_dir", str(tmp_path / f"data{len(running)}"))
        app = create_app(model, Settings(**settings))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        running.append((server, thread))
        wait_for(lambda: server.started)
        host, port = sock.getsockname()
        return f"http://{host}:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(15)


def closed_port_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def image_project(fake: FakeLabelStudio, value: str | None = None) -> tuple[int, int]:
    """A project with one task whose image was uploaded (or is `value`); (project, task)."""
    project_id = fake.add_project(IMAGE_CONFIG, title="Pets")
    image = value if value is not None else fake.upload(project_id, "cat.png", PNG)
    return project_id, fake.add_task(project_id, {"image": image})


def doctor(fake: FakeLabelStudio | None, *args: str, key: str | None = None) -> tuple[int, str]:
    """Run `relaxml doctor` through click; (exit status, output)."""
    env = {"LABEL_STUDIO_URL": None, "LABEL_STUDIO_API_KEY": None}
    env.update({"RELAXML_BASIC_AUTH_USER": None, "RELAXML_BASIC_AUTH_PASS": None})
    if fake is not None:
        env.update({"LABEL_STUDIO_URL": fake.url, "LABEL_STUDIO_API_KEY": key or fake.api_key})
    result = CliRunner().invoke(main, ["doctor", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


def lines(output: str) -> dict[str, str]:
    """Each check line by its first words after the status (`{"api key:": "ok ..."}`)."""
    return {line[6:].split(" ", 2)[0]: line for line in output.splitlines()[:-1]}


def find(output: str, text: str) -> str:
    """The first line containing `text`."""
    found = [line for line in output.splitlines() if text in line]
    assert found, f"no line with {text!r} in:\n{output}"
    return found[0]


def statuses(output: str) -> list[str]:
    return [line.split(" ", 1)[0] for line in output.splitlines()[:-1]]


# --- healthy ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pat", [False, True], ids=["legacy token", "personal access token"])
def test_a_healthy_setup_passes_every_check(backends, pat):
    backend = backends()
    with FakeLabelStudio(personal_access_token=pat) as fake:
        project_id, task_id = image_project(fake)
        fake.add_ml_backend(project_id, backend)
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 0, out
    assert statuses(out) == ["ok"] * 12, out
    kind = "personal access token" if pat else "legacy token"
    assert find(out, "API key").startswith(f"ok    API key: a {kind} of annotator@example.com")
    assert find(out, "Label Studio 1.23.2 at").startswith("ok")
    assert f"task {task_id}'s image /data/upload/" in find(out, "media:")
    assert "downloaded (108 bytes)" in out
    assert f"backend at {backend}: UP, Echo, model version 'echo-1'" in out
    assert "label config parsed: Choices kind on Image image" in out
    assert "event webhook to" in out
    assert "model version 'echo-1' in Label Studio" in out
    assert out.splitlines()[-1] == "12 ok, 0 warnings, 0 failed, 0 skipped: no problem found"
    assert fake.api_key not in out


def test_as_a_subprocess_with_the_environment_it_passes_and_never_prints_the_key(backends):
    backend = backends()
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend)
        env = {**os.environ, **fake.env, "PYTHONPATH": str(ROOT)}
        for name in ("RELAXML_BASIC_AUTH_USER", "RELAXML_BASIC_AUTH_PASS"):
            env.pop(name, None)
        done = subprocess.run(
            [sys.executable, "-m", "relaxml", "doctor", "--project", str(project_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        wrong = subprocess.run(
            [sys.executable, "-m", "relaxml", "doctor", "--api-key", "f" * 40],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert statuses(done.stdout) == ["ok"] * 12
    assert fake.api_key not in done.stdout + done.stderr
    assert wrong.returncode == 1
    assert find(wrong.stdout, "API key").startswith("FAIL  API key: Label Studio refuses")
    assert "f" * 40 not in wrong.stdout + wrong.stderr


def test_the_backend_defaults_to_the_project_ml_backend_and_the_project_is_optional(backends):
    backend = backends()
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend)
        code, out = doctor(fake)
        code_backend, out_backend = doctor(fake, "--backend", backend)
    assert code == 0, out
    assert find(out, "project:").startswith("skip  project: pass --project ID")
    assert find(out, "backend: pass --backend").startswith("skip")
    assert code_backend == 0, out_backend
    assert find(out_backend, f"backend at {backend}: UP").startswith("ok")
    assert "it needs the project's label config" in out_backend


# --- Label Studio and the key --------------------------------------------------------------


def test_no_url_fails_and_every_later_check_is_skipped():
    code, out = doctor(None, "--project", "1")
    assert code == 1
    assert out.splitlines()[0].startswith("FAIL  no Label Studio URL  fix: pass --url or set")
    assert statuses(out)[1:] == ["skip"] * 11
    assert "1 failed, 11 skipped" in out.splitlines()[-1]


def test_label_studio_unreachable():
    url = closed_port_url()
    code, out = doctor(None, "--url", url, "--api-key", "k" * 40)
    assert code == 1
    assert out.startswith(f"FAIL  Label Studio is unreachable at {url}/: ConnectionError  fix:")
    assert "k" * 40 not in out


def test_no_key():
    with FakeLabelStudio() as fake:
        code, out = doctor(None, "--url", fake.url)
    assert code == 1
    assert find(out, "no API key").startswith("FAIL  no API key  fix: pass --api-key or set")


@pytest.mark.parametrize("pat", [False, True], ids=["legacy token", "personal access token"])
def test_a_wrong_key_fails(pat):
    with FakeLabelStudio(personal_access_token=pat) as fake:
        wrong = fake.api_key[:-4] + "AAAA"
        code, out = doctor(fake, key=wrong)
    assert code == 1
    line = find(out, "API key")
    assert line.startswith("FAIL  API key:"), out
    assert ("refused the personal access token" if pat else "refuses the legacy token") in line
    assert "fix:" in line
    assert wrong not in out
    assert find(out, "legacy tokens").startswith("skip")


def test_a_legacy_token_when_legacy_tokens_are_disabled():
    with FakeLabelStudio() as fake:
        fake.legacy_tokens_enabled = False
        project_id, _ = image_project(fake)
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 1
    assert find(out, "API key").startswith("ok    API key: a legacy token Label Studio knows")
    assert find(out, "legacy tokens are disabled").startswith(
        "FAIL  legacy tokens are disabled for this organization, and the key is a legacy token"
        "  fix: use a personal access token (Account & Settings) or enable legacy tokens in "
        "Organization settings"
    )
    assert find(out, f"project {project_id}:").startswith("skip")


def test_a_personal_access_token_when_legacy_tokens_are_disabled_is_fine():
    with FakeLabelStudio(personal_access_token=True) as fake:
        fake.legacy_tokens_enabled = False
        code, out = doctor(fake)
    assert code == 0, out
    line = find(out, "legacy tokens are disabled")
    assert line.startswith("ok")
    assert "LABEL_STUDIO_API_KEY" in line


# --- the project and its media ---------------------------------------------------------------


def test_an_unknown_project():
    with FakeLabelStudio() as fake:
        code, out = doctor(fake, "--project", "99")
    assert code == 1
    assert find(out, "project 99").startswith("FAIL  project 99 not found  fix: pass the number")
    assert find(out, "media:").startswith("skip")


def test_a_label_config_that_does_not_parse():
    with FakeLabelStudio() as fake:
        project_id = fake.add_project("<View><Image name='a' value='$a'></View>")
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 1
    assert "its label config does not parse" in find(out, f"project {project_id}")


def test_media_that_cannot_be_downloaded():
    with FakeLabelStudio() as fake:
        project_id, task_id = image_project(fake, "/data/upload/1/gone-cat.png")
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 1
    line = find(out, "media:")
    assert line.startswith(
        f"FAIL  media: task {task_id}'s image: cannot download /data/upload/1/gone-cat.png"
    )
    assert "404" in line
    assert "fix: the file is missing" in line


def test_local_files_are_downloaded_too():
    with FakeLabelStudio() as fake:
        project_id = fake.add_project(IMAGE_CONFIG)
        fake.add_task(project_id, {"image": fake.add_local_file("pets/dog.png", PNG)})
        code, out = doctor(fake, "--project", str(project_id))
    assert "/data/local-files/?d=pets/dog.png downloaded (108 bytes)" in out
    assert find(out, "media:").startswith("ok")
    assert code == 1  # no ML backend connected
    assert find(out, "has no ML backend").startswith("FAIL")


def test_a_task_without_the_config_key():
    with FakeLabelStudio() as fake:
        project_id = fake.add_project(IMAGE_CONFIG)
        task_id = fake.add_task(project_id, {"picture": "/data/upload/1/a.png"})
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 1
    assert find(out, "media:").startswith(
        f"FAIL  media: task {task_id} has no 'image' in its data, which <Image "
        'value="$image"> shows'
    )


def test_a_project_without_tasks_skips_the_media():
    with FakeLabelStudio() as fake:
        project_id = fake.add_project(IMAGE_CONFIG)
        _, out = doctor(fake, "--project", str(project_id))
    assert find(out, "media:").startswith(f"skip  media: project {project_id} has no task yet")


# --- the backend -----------------------------------------------------------------------------


def test_a_backend_that_is_not_running():
    url = closed_port_url()
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, url)
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 1
    assert find(out, "backend unreachable").startswith(
        f"FAIL  backend unreachable from here at {url}: ConnectionError  fix: start it"
    )
    side = find(out, "Label Studio cannot reach")
    assert side.startswith(f"FAIL  Label Studio cannot reach the backend at {url} (Disconnected")
    assert f"fix: start the backend at {url}" in side
    assert find(out, "Basic Auth").startswith("skip")


def test_no_ml_backend_connected(backends):
    backend = backends()
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        code, out = doctor(fake, "--project", str(project_id), "--backend", backend)
    assert code == 1
    assert find(out, "has no ML backend").startswith(
        f"FAIL  project {project_id} has no ML backend  fix: connect one"
    )
    assert find(out, f"backend at {backend}: UP").startswith("ok")
    assert find(out, "Label Studio's side").startswith("warn  Label Studio's side:")


def test_basic_auth_on_the_backend_but_not_in_label_studio(backends):
    backend = backends(basic_auth_user="ls", basic_auth_pass=PASSWORD)
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend)
        code, out = doctor(fake, "--project", str(project_id))
        code_with, out_with = doctor(
            fake,
            "--project",
            str(project_id),
            "--basic-auth-user",
            "ls",
            "--basic-auth-pass",
            PASSWORD,
        )
    assert code == 1
    assert find(out, "requires Basic Auth").startswith("ok    backend at")
    assert find(out, "backend /setup").startswith("skip")
    assert find(out, "Basic Auth: the backend requires it, but").startswith(
        "FAIL  Basic Auth: the backend requires it, but Label Studio's ML backend record has "
        "none (auth_method NONE)  fix: in Label Studio, edit the model"
    )
    assert "Basic Auth does not match the backend's: see Basic Auth below" in find(
        out, "Label Studio cannot reach"
    )
    assert code_with == 1
    assert find(out_with, "backend /setup works").startswith("ok")
    assert PASSWORD not in out_with


def test_basic_auth_on_both_sides(backends):
    backend = backends(basic_auth_user="ls", basic_auth_pass=PASSWORD)
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend, basic_auth=("ls", PASSWORD))
        env_pass = {"RELAXML_BASIC_AUTH_USER": "ls", "RELAXML_BASIC_AUTH_PASS": PASSWORD}
        result = CliRunner().invoke(
            main, ["doctor", "--project", str(project_id)], env={**fake.env, **env_pass}
        )
        wrong = CliRunner().invoke(
            main,
            ["doctor", "--project", str(project_id), "--basic-auth-pass", "nope"],
            env={**fake.env, "RELAXML_BASIC_AUTH_USER": "ls"},
        )
    assert result.exit_code == 0, result.output
    assert statuses(result.output) == ["ok"] * 12
    assert "Label Studio sends it (accepted)" in result.output
    assert PASSWORD not in result.output
    assert wrong.exit_code == 1
    assert "refuses the Basic Auth user and password given" in wrong.output


def test_basic_auth_in_label_studio_only_is_a_warning(backends):
    backend = backends()
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend, basic_auth=("ls", PASSWORD))
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 0, out
    assert find(out, "Basic Auth:").startswith(
        "warn  Basic Auth: Label Studio sends credentials, but the backend requires none"
    )


def test_label_studio_blocking_local_addresses(backends):
    backend = backends()
    with FakeLabelStudio() as fake:
        fake.block_local_ip = True
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend)
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 1
    line = find(out, "Label Studio cannot reach")
    assert "reserved network address" in line
    assert "a loopback address: Label Studio 1.23 refuses" in line
    assert "ML_BLOCK_LOCAL_IP=false" in line


def test_no_event_webhook_under_ssrf_protection_is_a_warning(backends):
    backend = backends()
    with FakeLabelStudio() as fake:
        fake.ssrf_protection = True
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, backend)
        code, out = doctor(fake, "--project", str(project_id))
    assert code == 0, out
    line = find(out, "event webhook")
    assert line.startswith(f"warn  no event webhook to {backend}/webhook")
    assert "SSRF_PROTECTION_ENABLED" in line


def test_another_backend_than_label_studio_calls_shows_the_version_difference(backends):
    connected, other = backends(), backends(Other)
    with FakeLabelStudio() as fake:
        project_id, _ = image_project(fake)
        fake.add_ml_backend(project_id, connected)
        code, out = doctor(fake, "--project", str(project_id), "--backend", other)
    assert code == 0, out
    assert f"(Label Studio calls the backend at {connected}, not {other})" in out
    assert find(out, "model version:").startswith(
        f"warn  model version: Label Studio has 'echo-1', the backend at {other} serves 'other-7'"
    )


def test_a_backend_that_is_not_an_ml_backend_or_is_down():
    def answer(seen: Seen) -> Reply:
        if seen.path == "/down/health":
            return Reply.json({"status": "DOWN", "reason": "the outbox loop stopped"}, 503)
        return Reply.json({"detail": "Not found"}, 404)

    server = FakeServer(answer).start()
    try:
        with FakeLabelStudio() as fake:
            code, out = doctor(fake, "--backend", server.url + "/nothing")
            code_down, out_down = doctor(fake, "--backend", server.url + "/down")
    finally:
        server.stop()
    assert code == 1
    assert "without an ML backend's status" in find(out, "/health answered 404")
    assert code_down == 1
    assert find(out_down, "is DOWN").startswith(
        f"FAIL  backend at {server.url}/down is DOWN: the outbox loop stopped (503)"
    )


# --- the report ------------------------------------------------------------------------------


def test_a_line_is_one_line_redacted_with_its_fix():
    from relaxml._redaction import remember

    remember("hunter2-secret-value")
    line = Line("FAIL", "refused hunter2-secret-value\nsecond", "do this")
    assert line.render() == "FAIL  refused [redacted] second  fix: do this"
    printed: list[str] = []
    report = Report(printed.append)
    report.ok("fine")
    report.warn("hmm")
    report.skip("later")
    assert printed == ["ok    fine", "warn  hmm", "skip  later"]
    assert not report.failed
    assert report.summary() == "1 ok, 1 warning, 0 failed, 1 skipped: no problem found"
