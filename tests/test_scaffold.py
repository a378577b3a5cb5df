"""`relaxml init`: every template makes a project whose tests pass, whose code is clean, and
whose Dockerfile's own commands build, serve and pass the health check."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
import venv
from pathlib import Path

import pytest
from click.testing import CliRunner

from relaxml._scaffold.generate import TEMPLATES, Names
from relaxml.cli import main

from .support.processes import free_port

ROOT = Path(__file__).resolve().parents[1]


def init(where: Path, name: str, template: str) -> Path:
    result = CliRunner().invoke(main, ["init", str(where / name), "--template", template])
    assert result.exit_code == 0, result.output
    return where / name


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_file_is_filled_in_with_lf_endings(tmp_path, template):
    project = init(tmp_path, "Squirrel finder", template)
    files = sorted(p.relative_to(project).as_posix() for p in project.rglob("*") if p.is_file())
    assert files == [
        ".dockerignore", ".gitattributes", ".gitignore", "Dockerfile", "README.md",
        "docker-compose.yml", "label_config.xml", "model.py", "pyproject.toml",
        "requirements.txt", "tasks.json", "tests/test_model.py", "wheels/README.md",
    ]  # fmt: skip
    for path in project.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"\r" not in data, path
            assert b"{{" not in data, path
    assert "class SquirrelFinder(LabelStudioModel)" in (project / "model.py").read_text()
    assert '"model.py:SquirrelFinder"' in (project / "Dockerfile").read_text()
    json.loads((project / "tasks.json").read_text())


@pytest.mark.parametrize("template", TEMPLATES)
def test_the_code_is_lint_clean(tmp_path, template):
    project = init(tmp_path, "demo", template)
    ruff = [sys.executable, "-m", "ruff"]
    for args in (["check", "--select", "E,F,W,I,B,UP", "."], ["format", "--check", "."]):
        done = subprocess.run([*ruff, *args], cwd=project, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_the_dockerfile_follows_the_rules(tmp_path):
    text = (init(tmp_path, "demo", "blank") / "Dockerfile").read_text()
    assert re.search(r"^USER relaxml$", text, re.M)  # not root
    assert "useradd --create-home --uid 10001 relaxml" in text
    assert re.search(r"^VOLUME /data$", text, re.M)
    assert "RELAXML_DATA_DIR=/data" in text
    assert re.search(r"^HEALTHCHECK ", text, re.M)
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", text, re.M)  # --build-arg for CUDA
    assert re.search(r"^EXPOSE 9090$", text, re.M)
    compose = (tmp_path / "demo" / "docker-compose.yml").read_text()
    assert 'ML_BLOCK_LOCAL_IP: "false"' in compose
    assert "LABEL_STUDIO_URL: http://label-studio:8080" in compose


def test_an_existing_directory_or_a_bad_name_is_a_usage_error(tmp_path):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("mine")
    result = CliRunner().invoke(main, ["init", str(tmp_path / "taken")])
    assert result.exit_code == 2
    assert "already exists and is not empty" in result.output
    assert (tmp_path / "taken" / "x").read_text() == "mine"
    result = CliRunner().invoke(main, ["init", str(tmp_path / "9lives")])
    assert result.exit_code == 2
    assert "starting with a letter" in result.output
    assert Names.of("my-cool_model") == Names("my-cool_model", "my-cool-model", "MyCoolModel")


@pytest.fixture(scope="module")
def fresh_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new virtual environment with relaxml's wheel (and its testing extra), pytest and
    every template's requirements: what a user's fresh machine has after the README's steps."""
    where = tmp_path_factory.mktemp("venv")
    venv.create(where / "venv", with_pip=True)
    python = where / "venv" / "bin" / "python"
    wheels = where / "wheels"
    pip = [str(python), "-m", "pip", "--disable-pip-version-check", "-q"]
    build = subprocess.run(
        [*pip, "wheel", "--no-deps", "-w", str(wheels), str(ROOT)], capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheels.glob("relaxml-*.whl")
    install = subprocess.run(
        [*pip, "install", f"{wheel}[testing]", "pytest", "pillow>=10"],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr
    return python


@pytest.mark.parametrize("template", TEMPLATES)
def test_a_new_project_passes_its_tests_and_serves_as_its_dockerfile_says(
    tmp_path, template, fresh_venv
):
    bin_dir = fresh_venv.parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("PYTHONPATH", None)
    project = tmp_path / "demo"
    made = subprocess.run(  # the installed wheel's own command and templates
        [str(bin_dir / "relaxml"), "init", str(project), "--template", template],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    dockerfile = (project / "Dockerfile").read_text().replace("\\\n", " ")  # join continued lines

    # The Dockerfile's install step as it is written: relaxml's wheel put in wheels/ (as the
    # README says), `COPY wheels/ /tmp/wheels/`, then its `RUN pip install ...` line.
    built = fresh_venv.parents[2] / "wheels"
    for wheel in built.glob("relaxml-*.whl"):
        shutil.copy(wheel, project / "wheels")
    copied = shutil.copytree(project / "wheels", tmp_path / "copied-wheels")
    (run,) = [line for line in dockerfile.splitlines() if line.startswith("RUN pip install")]
    install = subprocess.run(
        run.removeprefix("RUN ").replace("/tmp/wheels", str(copied)),
        shell=True, cwd=project, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    assert not copied.exists()  # the line's own clean-up ran
    tests = subprocess.run(
        [str(fresh_venv), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout[-3000:]

    # The Dockerfile's CMD, then its HEALTHCHECK command, on a free port.
    port = str(free_port())
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M)[1])  # type: ignore[index]
    check = re.search(r"^HEALTHCHECK .*? CMD (.*)$", dockerfile, re.M)[1]  # type: ignore[index]
    cmd = [port if part == "9090" else part for part in cmd]
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            cmd, cwd=project, stdout=out, stderr=subprocess.STDOUT,
            env={**env, "RELAXML_DATA_DIR": str(tmp_path / "data")},
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(
                check.replace("9090", port), shell=True, env=env, capture_output=True
            )
            if probe.returncode == 0:
                break
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, probe.stderr.decode()
            time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert json.load(answer)["model_version"] == "demo-0"
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert shutil.which("python", path=str(bin_dir)) == str(bin_dir / "python")
