"""`relaxml serve --engine`: options that make no sense together are usage errors (exit 2),
refused before anything starts (no Ray needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from relaxml.cli import main

TARGET = "tests.support.models:Echo"


pytestmark = pytest.mark.usefixtures("restore_logging")  # tests/conftest.py


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--replicas", "2"], "--replicas needs --engine ray"),
        (["--autoscale", "1:3"], "--autoscale needs --engine ray"),
        (["--num-cpus", "2"], "--num-cpus needs --engine ray"),
        (["--num-gpus", "1"], "--num-gpus needs --engine ray"),
        (["--ray-address", "auto"], "--ray-address needs --engine ray"),
        (["--engine", "local", "--replicas", "2"], "--replicas needs --engine ray"),
        (["--engine", "ray", "--workers", "2"], "--workers cannot be used with --engine ray"),
        (["--engine", "ray", "--workers", "1"], "--workers cannot be used with --engine ray"),
        (["--engine", "ray", "--reload"], "--reload cannot be used with --engine ray"),
        (["--engine", "ray", "--devices", "cuda:0"], "--devices cannot be used with --engine"),
        (
            ["--engine", "ray", "--replicas", "2", "--autoscale", "1:3"],
            "--replicas and --autoscale cannot be used together",
        ),
        (["--engine", "ray", "--autoscale", "3"], "--autoscale must be MIN:MAX"),
        (["--engine", "ray", "--autoscale", "3:1"], "--autoscale must be MIN:MAX"),
        (["--engine", "ray", "--autoscale", "0:0"], "--autoscale must be MIN:MAX"),
        (["--engine", "ray", "--autoscale", "a:b"], "--autoscale must be MIN:MAX"),
        (["--engine", "ray", "--replicas", "0"], "0 is not in the range x>=1"),
        (["--engine", "ray", "--num-cpus", "-1"], "-1.0 is not in the range x>=0"),
        (["--engine", "spark"], "'spark' is not one of 'local', 'ray'"),
    ],
)
def test_options_that_make_no_sense_together_are_usage_errors(
    options: list[str], message: str
) -> None:
    result = CliRunner().invoke(main, ["serve", TARGET, *options], env={"RAY_ADDRESS": ""})
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_an_engine_ray_setting_from_the_environment_is_refused_as_its_option() -> None:
    result = CliRunner().invoke(main, ["serve", TARGET], env={"RELAXML_REPLICAS": "2"})
    assert result.exit_code == 2
    assert "--replicas needs --engine ray" in result.output


def test_ray_address_in_the_environment_does_not_trouble_engine_local() -> None:
    # RAY_ADDRESS may be set for other tools: only --ray-address on the command line is refused
    env = {"RAY_ADDRESS": "auto"}
    result = CliRunner().invoke(main, ["serve", "no_such_module_here"], env=env)
    assert result.exit_code == 2
    assert 'Could not import module "no_such_module_here"' in result.output


def test_engine_ray_without_ray_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    argv = ["serve", TARGET, "--engine", "ray", "--data-dir", str(tmp_path / "data")]
    result = CliRunner().invoke(main, argv, env={"RAY_ADDRESS": ""})
    assert result.exit_code == 2, result.output
    assert "--engine ray needs Ray: pip install 'relaxml[ray]'" in result.output
