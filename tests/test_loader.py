"""`relaxml._server.loader.load_model_class`, on small model modules written to `tmp_path`.

Every module gets a unique name, and the `workspace` fixture removes the modules it created from
`sys.modules` (and undoes the loader's `sys.path` changes) afterwards, so tests are independent.
"""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from relaxml import LabelStudioModel
from relaxml._server.loader import LoadError, load_model_class

SQUIRREL = """
from relaxml import LabelStudioModel

class Squirrel(LabelStudioModel):
    def predict(self, tasks, context):
        return [None for _ in tasks]
"""

MISSING_PACKAGE = "not_installed_pkg_xyz"


class Workspace:
    """A folder on `sys.path` (and the working directory) where a test writes its modules."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, relative: str, source: str) -> Path:
        """Write `source` (dedented) to `root/relative` and return the file's path."""
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        importlib.invalidate_caches()
        return path

    def module(self, source: str, folder: str = "", stem: str = "model") -> str:
        """Write `source` as a module with a fresh name in `folder`; return the module name."""
        name = unique(stem)
        self.write(f"{folder}/{name}.py" if folder else f"{name}.py", source)
        return name


def unique(stem: str) -> str:
    """A module name no other test uses."""
    return f"{stem}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Workspace]:
    root = tmp_path.resolve()
    monkeypatch.syspath_prepend(str(root))  # also restores sys.path, loader insertions included
    monkeypatch.chdir(root)
    before = set(sys.modules)
    yield Workspace(root)
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file and Path(file).resolve().is_relative_to(root):
            del sys.modules[name]


def load_error(target: str, app_dir: str | None = ".") -> str:
    """The message of the `LoadError` that loading `target` raises."""
    with pytest.raises(LoadError) as caught:
        load_model_class(target, app_dir)
    return str(caught.value)


# Targets that work


def test_module_and_class(workspace: Workspace) -> None:
    name = workspace.module(SQUIRREL)

    model = load_model_class(f"{name}:Squirrel")

    assert model.__name__ == "Squirrel"
    assert model.__module__ == name
    assert issubclass(model, LabelStudioModel)


@pytest.mark.parametrize("explicit", [True, False], ids=["app_dir", "cwd"])
def test_module_is_found_in_app_dir(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, explicit: bool
) -> None:
    name = workspace.module(SQUIRREL, folder="app")  # not on sys.path
    app = workspace.root / "app"

    if explicit:
        model = load_model_class(f"{name}:Squirrel", app_dir=str(app))
    else:
        monkeypatch.chdir(app)
        model = load_model_class(f"{name}:Squirrel")  # app_dir defaults to "."

    assert model.__name__ == "Squirrel"


@pytest.mark.parametrize("form", ["relative", "dot-relative", "absolute"])
def test_file_and_class(workspace: Workspace, form: str) -> None:
    helper = unique("helper")
    workspace.write(f"models/{helper}.py", 'LABEL = "from the sibling module"\n')
    stem = workspace.module(
        f"""
        from relaxml import LabelStudioModel
        from {helper} import LABEL

        class Squirrel(LabelStudioModel):
            label = LABEL

            def predict(self, tasks, context):
                return [None for _ in tasks]
        """,
        folder="models",
    )
    path = {
        "relative": f"models/{stem}.py",
        "dot-relative": f"./models/{stem}.py",
        "absolute": str(workspace.root / "models" / f"{stem}.py"),
    }[form]

    model = load_model_class(f"{path}:Squirrel")

    assert model.__name__ == "Squirrel"
    assert model.label == "from the sibling module"  # type: ignore[attr-defined]


@pytest.mark.parametrize("as_file", [False, True], ids=["module", "file"])
def test_module_with_one_model_needs_no_class(workspace: Workspace, as_file: bool) -> None:
    other = workspace.module(SQUIRREL, stem="other")
    name = workspace.module(
        f"""
        import abc

        from relaxml import LabelStudioModel
        from {other} import Squirrel  # imported, not defined here: ignored

        class Base(LabelStudioModel):  # abstract: ignored
            @abc.abstractmethod
            def embed(self, text): ...

        class Owl(Base):
            def embed(self, text):
                return text

            def predict(self, tasks, context):
                return [None for _ in tasks]

        class NotAModel:
            pass
        """
    )

    model = load_model_class(f"{name}.py" if as_file else name)

    assert model.__name__ == "Owl"


def test_dotted_attribute(workspace: Workspace) -> None:
    name = workspace.module(
        """
        from relaxml import LabelStudioModel

        class Zoo:
            class Squirrel(LabelStudioModel):
                def predict(self, tasks, context):
                    return [None for _ in tasks]
        """
    )

    assert load_model_class(f"{name}:Zoo.Squirrel").__qualname__ == "Zoo.Squirrel"


# Targets that name no servable class: LoadError with a one-line message


def test_module_without_models(workspace: Workspace) -> None:
    name = workspace.module("from relaxml import LabelStudioModel\n\nVALUE = 1\n")

    assert load_error(name) == (f'Module "{name}" defines no relaxml.LabelStudioModel subclass.')


def test_module_with_several_models_lists_them(workspace: Workspace) -> None:
    name = workspace.module(
        SQUIRREL
        + """
class Owl(LabelStudioModel):
    def predict(self, tasks, context):
        return []
"""
    )

    assert load_error(name) == (
        f'Module "{name}" defines several models (Owl, Squirrel): name one, e.g. "{name}:Squirrel".'
    )


@pytest.mark.parametrize(
    "target",
    ["no_such_module_xyz", "no_such_package_xyz.model", "json.no_such_submodule_xyz"],
)
def test_missing_module(workspace: Workspace, target: str) -> None:
    assert load_error(f"{target}:Model") == f'Could not import module "{target}".'


def test_relative_module_name(workspace: Workspace) -> None:
    name = workspace.module(SQUIRREL)

    message = load_error(f".{name}:Squirrel")

    assert message.startswith(f'Could not import module ".{name}"')


@pytest.mark.parametrize("path", ["models/missing.py", "/no/such/dir/missing.py"])
def test_missing_file(workspace: Workspace, path: str) -> None:
    assert load_error(f"{path}:Squirrel") == f'File "{path}" does not exist.'


@pytest.mark.parametrize("path", ["models/squirrel.txt", "models/squirrel.pyc", "models/"])
def test_path_that_is_not_a_python_file(workspace: Workspace, path: str) -> None:
    workspace.write("models/squirrel.txt", SQUIRREL)

    message = load_error(f"{path}:Squirrel")

    assert message == f'"{Path(path)}" is not a Python file (expected a path ending in .py).'


@pytest.mark.parametrize("attribute", ["Missing", "Squirrel.Missing", "squirrel"])
def test_missing_attribute(workspace: Workspace, attribute: str) -> None:
    name = workspace.module(SQUIRREL)

    message = load_error(f"{name}:{attribute}")

    assert message == f'Attribute "{attribute}" not found in module "{name}".'


@pytest.mark.parametrize(
    ("attribute", "description"),
    [
        ("make_model", "the function make_model"),
        ("instance", "an instance of Squirrel"),
        ("Plain", "the class Plain"),
        ("json", "the module json"),
    ],
)
def test_attribute_that_is_not_a_model_class(
    workspace: Workspace, attribute: str, description: str
) -> None:
    name = workspace.module(
        SQUIRREL
        + """
import json

def make_model():
    return Squirrel()

instance = Squirrel()

class Plain:
    def predict(self, tasks, context):
        return []
"""
    )
    target = f"{name}:{attribute}"

    assert load_error(target) == (
        f'"{target}" is {description}, not a subclass of relaxml.LabelStudioModel.'
    )


def test_abstract_model_names_what_to_implement(workspace: Workspace) -> None:
    name = workspace.module(
        """
        import abc

        from relaxml import LabelStudioModel

        class NoPredict(LabelStudioModel):
            def fit(self, event):
                return None

        class Embedder(LabelStudioModel):
            @abc.abstractmethod
            def embed(self, text): ...
        """
    )

    assert load_error(f"{name}:NoPredict") == f'"{name}:NoPredict" is abstract: implement predict.'
    assert load_error(f"{name}:Embedder") == (
        f'"{name}:Embedder" is abstract: implement embed, predict.'
    )


@pytest.mark.parametrize("target", [":Squirrel", "squirrel:", "squirrel:Squirrel:", "", ":"])
def test_bad_format(workspace: Workspace, target: str) -> None:
    assert load_error(target) == (
        f'Target "{target}" must be "module:Class", "path/file.py:Class" or a module name.'
    )


# Errors inside the user's module are the user's bug: they propagate unchanged


@pytest.mark.parametrize(
    "line",
    [f"import {MISSING_PACKAGE}", f"from {MISSING_PACKAGE}.sub import thing"],
)
@pytest.mark.parametrize("as_file", [False, True], ids=["module", "file"])
def test_missing_import_inside_the_module_propagates(
    workspace: Workspace, line: str, as_file: bool
) -> None:
    name = workspace.module(SQUIRREL + line + "\n")
    target = f"{name}.py:Squirrel" if as_file else f"{name}:Squirrel"

    with pytest.raises(ModuleNotFoundError) as caught:
        load_model_class(target)

    assert caught.value.name == MISSING_PACKAGE
    assert name not in sys.modules


def test_missing_import_inside_a_package_propagates(workspace: Workspace) -> None:
    package = unique("package")
    workspace.write(f"{package}/__init__.py", f"import {MISSING_PACKAGE}\n")
    workspace.write(f"{package}/model.py", SQUIRREL)

    with pytest.raises(ModuleNotFoundError) as caught:
        load_model_class(f"{package}.model:Squirrel")

    assert caught.value.name == MISSING_PACKAGE


def test_import_error_inside_the_module_propagates(workspace: Workspace) -> None:
    name = workspace.module(SQUIRREL + "from os import not_a_name_xyz\n")

    with pytest.raises(ImportError, match="not_a_name_xyz") as caught:
        load_model_class(f"{name}:Squirrel")

    assert not isinstance(caught.value, LoadError)


@pytest.mark.parametrize("as_file", [False, True], ids=["module", "file"])
def test_syntax_error_propagates(workspace: Workspace, as_file: bool) -> None:
    name = workspace.module(SQUIRREL + "def broken(:\n")
    target = f"{name}.py:Squirrel" if as_file else f"{name}:Squirrel"

    with pytest.raises(SyntaxError) as caught:
        load_model_class(target)

    assert caught.value.filename == str(workspace.root / f"{name}.py")
    assert name not in sys.modules


def test_module_with_only_abstract_models_says_so(workspace: Workspace) -> None:
    name = workspace.module(
        """
        from relaxml import LabelStudioModel

        class Unfinished(LabelStudioModel):
            pass
        """
    )
    assert load_error(name) == (
        f'Module "{name}" defines only abstract models (Unfinished): implement predict.'
    )


def test_a_file_named_like_a_stdlib_module_does_not_shadow_it(workspace: Workspace) -> None:
    import json

    path = workspace.write("models/json.py", SQUIRREL)
    model = load_model_class(f"{path}:Squirrel")
    assert model.__name__ == "Squirrel"
    assert sys.modules["json"] is json
    assert model.__module__ == "relaxml_target_json"
    del sys.modules["relaxml_target_json"]


def test_file_target_without_class_and_a_drive_like_colon(workspace: Workspace) -> None:
    path = workspace.write("one.py", SQUIRREL)
    assert load_model_class(str(path)).__name__ == "Squirrel"
    assert "does not exist" in load_error("C:\\models\\x.py")
