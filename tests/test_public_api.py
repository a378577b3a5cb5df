"""The public API is what `relaxml/__init__.py` exports; changing it is a decision."""

from __future__ import annotations

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
