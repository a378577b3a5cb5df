"""`relaxml doctor` against the real Label Studio 1.23.2 and `relaxml serve`: a healthy setup
passes every check with either kind of key; each misconfiguration it claims to catch fails its
line (wrong key, legacy tokens disabled, unknown project, missing media, backend down, Basic
Auth on the backend only)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from ..support.browser import png
from ..support.example_flow import upload
from ..support.labelstudio import LabelStudio
from ..support.processes import BackendFactory, BackendProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="kind" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>'
    "</View>"
)
TARGET = "tests/support/image_model.py:ColourOfImage"
PASSWORD = "doctor-basic-pass"


def doctor(ls: LabelStudio, key: str, *args: str) -> tuple[int, str]:
    """`python -m relaxml doctor ARGS` with Label Studio's URL and `key` in the environment."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for name in ("RELAXML_BASIC_AUTH_USER", "RELAXML_BASIC_AUTH_PASS"):
        env.pop(name, None)
    env.update(LABEL_STUDIO_URL=ls.url, LABEL_STUDIO_API_KEY=key)
    done = subprocess.run(
        [sys.executable, "-m", "relaxml", "doctor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert key not in done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout


def line(output: str, text: str) -> str:
    found = [each for each in output.splitlines() if text in each]
    assert found, f"no line with {text!r} in:\n{output}"
    return found[0]


def statuses(output: str) -> list[str]:
    return [each.split(" ", 1)[0] for each in output.splitlines()[:-1]]


def serve(factory: BackendFactory, port: int, *args: str) -> BackendProcess:
    argv = [sys.executable, "-m", "relaxml", "serve", TARGET, "--host", "127.0.0.1"]
    return factory([*argv, "--port", str(port), *args], {"PYTHONPATH": str(ROOT)}, port)


def image_project(ls: LabelStudio, title: str) -> tuple[int, int]:
    """A project with one uploaded image task; (project id, task id)."""
    project_id = ls.create_project(title, CONFIG)["id"]
    task_id = upload(ls, project_id, "cat.png", png(8, 8, (200, 30, 30)), "image/png")
    return project_id, task_id


def test_a_healthy_setup_passes_with_a_legacy_token_and_a_personal_access_token(
    label_studio, backend_factory, free_port
):
    ls = label_studio
    project_id, task_id = image_project(ls, "doctor healthy")
    backend = serve(backend_factory, free_port)
    ls.register_ml_backend(project_id, backend.url)
    for key, kind in ((ls.token, "legacy token"), (ls.personal_access_token(), "personal")):
        code, out = doctor(ls, key, "--project", str(project_id), "--backend", backend.url)
        assert code == 0, out
        assert statuses(out) == ["ok"] * 12, out
        assert line(out, "API key").startswith(f"ok    API key: a {kind}")
        assert line(out, "Label Studio 1.23.2 at").startswith("ok")
        assert f"media: task {task_id}'s image /data/upload/{project_id}/" in out
        assert line(out, "Label Studio reaches").endswith(
            "(Connected); a loopback address, so Label Studio runs with ML_BLOCK_LOCAL_IP=false"
        )
        assert "model version 'colour-1' in Label Studio and the backend" in out
    # Without --backend, the project's ML backend is the one checked.
    code, out = doctor(ls, ls.token, "--project", str(project_id))
    assert code == 0, out
    assert f"backend at {backend.url}: UP, ColourOfImage" in out


def test_a_wrong_key(label_studio):
    code, out = doctor(label_studio, "0" * 40)
    assert code == 1
    assert line(out, "API key").startswith(
        "FAIL  API key: Label Studio refuses the legacy token (401: Invalid token.)  fix:"
    )
    assert line(out, "legacy tokens").startswith("skip")


def test_a_legacy_token_when_the_organization_disables_legacy_tokens(label_studio):
    ls = label_studio
    pat = ls.personal_access_token()

    def legacy_tokens(enabled: bool) -> None:
        response = requests.post(
            f"{ls.url}/api/jwt/settings",
            headers={"Authorization": f"Bearer {ls.access_token(pat)}"},
            json={"api_tokens_enabled": True, "legacy_api_tokens_enabled": enabled},
            timeout=30,
        )
        assert response.status_code == 200, response.text

    legacy_tokens(False)
    try:
        code, out = doctor(ls, ls.token)
        code_pat, out_pat = doctor(ls, pat)
    finally:
        legacy_tokens(True)
    assert code == 1
    assert line(out, "API key").startswith("ok    API key: a legacy token Label Studio knows")
    assert line(out, "legacy tokens are disabled").startswith(
        "FAIL  legacy tokens are disabled for this organization, and the key is a legacy token"
        "  fix: use a personal access token (Account & Settings) or enable legacy tokens in "
        "Organization settings"
    )
    assert code_pat == 0, out_pat
    assert line(out_pat, "legacy tokens are disabled").startswith("ok")


def test_an_unknown_project(label_studio):
    code, out = doctor(label_studio, label_studio.token, "--project", "987654")
    assert code == 1
    assert line(out, "project 987654").startswith("FAIL  project 987654 not found  fix:")


def test_media_that_cannot_be_downloaded(label_studio):
    """A task naming an upload Label Studio never had, and an uploaded file deleted from Label
    Studio's disk: Label Studio 1.23.2 answers both with a 500."""
    ls = label_studio
    project_id = ls.create_project("doctor missing media", CONFIG)["id"]
    missing = f"/data/upload/{project_id}/0badf00d-missing.png"
    (task_id,) = ls.import_tasks(project_id, [{"data": {"image": missing}}])
    code, out = doctor(ls, ls.token, "--project", str(project_id))
    assert code == 1
    media = line(out, "media:")
    assert media.startswith(f"FAIL  media: task {task_id}'s image: cannot download {missing}")
    assert "answered 500" in media
    assert "fix: the file is missing" in media

    project_id, task_id = image_project(ls, "doctor deleted media")
    (stored,) = (ls.data_dir / "media" / "upload" / str(project_id)).glob("*cat.png")
    stored.unlink()
    code, out = doctor(ls, ls.token, "--project", str(project_id))
    assert code == 1
    media = line(out, "media:")
    assert media.startswith(f"FAIL  media: task {task_id}'s image: cannot download /data/upload/")
    assert "answered 500" in media, media
    assert "fix: the file is missing" in media


def test_a_backend_that_stopped(label_studio, backend_factory, free_port):
    ls = label_studio
    project_id, _ = image_project(ls, "doctor backend down")
    backend = serve(backend_factory, free_port)
    ls.register_ml_backend(project_id, backend.url)
    backend.stop()
    code, out = doctor(ls, ls.token, "--project", str(project_id))
    assert code == 1
    assert line(out, "backend unreachable").startswith(
        f"FAIL  backend unreachable from here at {backend.url}: ConnectionError  fix: start it"
    )
    side = line(out, "Label Studio cannot reach")
    assert side.startswith(f"FAIL  Label Studio cannot reach the backend at {backend.url}")
    assert f"fix: start the backend at {backend.url}" in side
    assert line(out, "Basic Auth").startswith("skip")


def test_basic_auth_on_the_backend_but_not_in_label_studio(
    label_studio, backend_factory, free_port
):
    ls = label_studio
    project_id, _ = image_project(ls, "doctor basic auth")
    open_backend = serve(backend_factory, free_port)
    ls.register_ml_backend(project_id, open_backend.url)  # registered without Basic Auth
    open_backend.stop()
    env_pass = ("--basic-auth-user", "ls", "--basic-auth-pass", PASSWORD)
    serve(backend_factory, free_port, *env_pass)  # the same address, now behind Basic Auth
    code, out = doctor(ls, ls.token, "--project", str(project_id))
    assert code == 1
    assert line(out, "Basic Auth: the backend requires it").startswith(
        "FAIL  Basic Auth: the backend requires it, but Label Studio's ML backend record has "
        "none (auth_method NONE)  fix: in Label Studio, edit the model"
    )
    side = line(out, "Label Studio cannot reach")
    assert side.startswith(
        f"FAIL  Label Studio cannot reach the backend at http://127.0.0.1:{free_port} (Disconnected"
    )
    assert (
        "fix: Label Studio's Basic Auth does not match the backend's: see Basic Auth below" in side
    )
    code_creds, out_creds = doctor(ls, ls.token, "--project", str(project_id), *env_pass)
    assert code_creds == 1
    assert line(out_creds, "backend /setup works").startswith("ok")
    assert PASSWORD not in out_creds


def test_basic_auth_on_both_sides_passes(label_studio, backend_factory, free_port):
    ls = label_studio
    project_id, _ = image_project(ls, "doctor basic auth ok")
    backend = serve(
        backend_factory, free_port, "--basic-auth-user", "ls", "--basic-auth-pass", PASSWORD
    )
    ls.register_ml_backend(project_id, backend.url, basic_auth=("ls", PASSWORD))
    args = ("--project", str(project_id), "--basic-auth-user", "ls", "--basic-auth-pass", PASSWORD)
    code, out = doctor(ls, ls.token, *args)
    assert code == 0, out
    assert statuses(out) == ["ok"] * 12, out
    assert "Basic Auth: the backend requires it, Label Studio sends it (accepted)" in out
    assert PASSWORD not in out


def test_a_missing_event_webhook_is_a_warning(label_studio, backend_factory, free_port):
    """Label Studio does not create the webhook for a private address under
    SSRF_PROTECTION_ENABLED (on by default); here it is deleted, to the same effect."""
    ls = label_studio
    project_id, _ = image_project(ls, "doctor no webhook")
    backend = serve(backend_factory, free_port)
    ls.register_ml_backend(project_id, backend.url)
    hooks = ls.api("GET", "/api/webhooks/", params={"project": project_id}).json()
    (hook,) = [h for h in hooks if h["url"] == backend.url + "/webhook"]
    ls.api("DELETE", f"/api/webhooks/{hook['id']}/")
    code, out = doctor(ls, ls.token, "--project", str(project_id))
    assert code == 0, out
    warning = line(out, "event webhook")
    assert warning.startswith(f"warn  no event webhook to {backend.url}/webhook")
    assert "SSRF_PROTECTION_ENABLED" in warning
    assert out.splitlines()[-1].startswith("11 ok, 1 warning, 0 failed")


@pytest.fixture(scope="module")
def guarded_label_studio(
    label_studio: LabelStudio, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabelStudio]:
    """A second Label Studio with its defaults for local addresses: backends on loopback or
    private addresses refused (`ML_BLOCK_LOCAL_IP`), and no webhooks to them (SSRF)."""
    server = LabelStudio(
        label_studio.executable,
        tmp_path_factory.mktemp("guarded-label-studio"),
        free_port(),
        env={"ML_BLOCK_LOCAL_IP": "true", "SSRF_PROTECTION_ENABLED": "true"},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_label_studio_that_blocks_local_addresses(
    guarded_label_studio, backend_factory, free_port
):
    ls = guarded_label_studio
    project_id, _ = image_project(ls, "doctor blocked")
    backend = serve(backend_factory, free_port)
    refused = ls.api("POST", "/api/ml/", json={"project": project_id, "url": backend.url},
                     check=False)  # fmt: skip
    assert refused.status_code == 403  # Label Studio's own refusal, which the doctor explains
    code, output = doctor(ls, ls.token, "--project", str(project_id), "--backend", backend.url)
    assert code == 1, output
    missing = line(output, "has no ML backend")
    assert missing.startswith("FAIL")
    assert "a loopback address, with 403" in missing
    assert "ML_BLOCK_LOCAL_IP=false" in missing
    blocked = line(output, "Label Studio's side")
    assert blocked.startswith("warn")
    assert "loopback address" in blocked
    assert "ML_BLOCK_LOCAL_IP=false" in blocked
