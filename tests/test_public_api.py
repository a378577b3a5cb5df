"""The public API is what `relaxml/__init__.py` exports; changing it is a decision."""

from __future__ import annotations

import subprocess
import sys

import pytest

import relaxml


def test_all_is_pinned():
    assert relaxml.__all__ == [
        "Context",
        "ControlTag",
        "HTTPError",
        "Label",
        "LabelConfig",
        "LabelConfigError",
        "LabelStudioModel",
        "ObjectTag",
        "Prediction",
        "Problem",
        "Project",
        "ResultBuilder",
        "ResultError",
        "Settings",
        "Task",
        "TrainingEvent",
        "UnknownLabelError",
        "__version__",
        "check_prediction",
        "configure_logging",
        "create_app",
        "parse_label_config",
    ]


def test_every_public_name_exists_and_is_documented():
    for name in relaxml.__all__:
        obj = getattr(relaxml, name)
        if name != "__version__":
            assert obj.__doc__, f"relaxml.{name} has no docstring"


def test_version_is_a_string():
    from relaxml.__about__ import __version__

    assert relaxml.__version__ == __version__
    assert __version__.count(".") == 2


def test_package_is_typed():
    from importlib.resources import files

    assert files("relaxml").joinpath("py.typed").is_file()


SERVER_PACKAGES = ("starlette", "anyio", "uvicorn")


def test_importing_relaxml_and_a_model_loads_no_server(tmp_path):
    model = tmp_path / "squirrel.py"
    model.write_text(
        "from relaxml import LabelStudioModel, Prediction, ResultBuilder, parse_label_config\n"
        "class Squirrel(LabelStudioModel):\n"
        "    def predict(self, tasks, context):\n"
        "        return [Prediction(result=[]) for _ in tasks]\n"
    )
    check = (
        "import sys, squirrel\n"
        "print(squirrel.Squirrel().predict([1, 2], None))\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_PACKAGES!r}))\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", check], cwd=tmp_path, check=True)


def test_create_app_is_there_on_first_use():
    from relaxml import create_app
    from relaxml._server.app import create_app as the_factory

    assert create_app is the_factory
    assert relaxml.create_app is the_factory
    with pytest.raises(AttributeError, match="no attribute 'serve'"):
        relaxml.serve  # noqa: B018


def test_labels_all_is_pinned():
    import relaxml.labels

    assert relaxml.labels.__all__ == [
        "ControlTag",
        "GeometryError",
        "Label",
        "LabelConfig",
        "LabelConfigError",
        "NoTargetError",
        "ObjectTag",
        "Problem",
        "Prompt",
        "Prompts",
        "RLEError",
        "ResultBuilder",
        "ResultError",
        "Target",
        "UnknownLabelError",
        "UnknownTagError",
        "UnparsedPrompt",
        "box_to_percent",
        "check_prediction",
        "check_result",
        "decode_rle",
        "ellipse_to_percent",
        "encode_rle",
        "find_target",
        "is_negative_label",
        "mask_to_rle",
        "match_label",
        "parse_label_config",
        "parse_prompts",
        "percent_to_box",
        "point_to_percent",
        "rle_length",
        "rle_to_array",
        "rle_to_mask",
    ]


def test_labelstudio_all_is_pinned():
    import relaxml.labelstudio

    assert relaxml.labelstudio.__all__ == [
        "LabelStudioClient",
        "LabelStudioError",
        "MediaError",
        "MediaFetcher",
    ]


def test_testing_all_is_pinned():
    import relaxml.testing

    assert relaxml.testing.__all__ == [
        "FakeLabelStudio",
        "ServedModel",
        "assert_predict_response",
        "assert_prediction",
        "make_context",
        "make_event",
        "make_task",
        "serve",
        "wait_for_training",
    ]


@pytest.mark.parametrize("package", ["relaxml.labels", "relaxml.labelstudio", "relaxml.testing"])
def test_public_package_names_exist_and_are_documented(package):
    import importlib

    module = importlib.import_module(package)
    assert module.__doc__
    for name in module.__all__:
        assert getattr(module, name).__doc__, f"{package}.{name} has no docstring"


def test_the_top_level_names_are_the_packages_names():
    import relaxml.labels

    for name in set(relaxml.__all__) & set(relaxml.labels.__all__):
        assert getattr(relaxml, name) is getattr(relaxml.labels, name)


def test_only_public_modules_and_packages_lack_an_underscore():
    """Everything else under relaxml/ is private: `_server`, `_delivery`, `_training`, ..."""
    from pathlib import Path

    root = Path(relaxml.__file__).parent
    public = sorted(
        p.name
        for p in root.iterdir()
        if not p.name.startswith("_") and (p.suffix == ".py" or p.is_dir()) and p.name != "py.typed"
    )
    assert public == [
        "cli.py",
        "context.py",
        "errors.py",
        "events.py",
        "labels",
        "labelstudio",
        "logs.py",
        "memo.py",
        "model.py",
        "prediction.py",
        "projects.py",
        "protocol.py",
        "settings.py",
        "testing",
    ]
