"""Find the model class a CLI target names: `module:Class`, `path/file.py:Class`, or a module.

Mistakes in the target (bad format, no such module, file or attribute, not a model class) raise
`LoadError` with a one-line message. An `ImportError` raised *inside* the user's module is the
user's bug, not a bad target: it propagates with its real traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from ..model import LabelStudioModel


class LoadError(Exception):
    """The target does not name a servable model class."""


def load_model_class(target: str, app_dir: str | None = ".") -> type[LabelStudioModel]:
    """Import and return the `LabelStudioModel` subclass that `target` names."""
    module_part, sep, attr = target.rpartition(":")
    if not sep or "/" in attr or "\\" in attr or attr.endswith(".py"):
        module_part, sep, attr = target, "", ""  # no ":Class" (maybe a Windows drive colon)
    if not module_part or (sep and not attr):
        raise LoadError(
            f'Target "{target}" must be "module:Class", "path/file.py:Class" or a module name.'
        )
    module = _import(module_part, app_dir)
    if attr:
        return _named_class(module, attr, target)
    return _only_class(module, module_part)


def _import(name: str, app_dir: str | None) -> ModuleType:
    if name.endswith(".py") or "/" in name or "\\" in name:
        return _import_file(Path(name))
    if name.startswith("."):
        raise LoadError(f'Could not import module "{name}": relative module names are not allowed.')
    if app_dir is not None:
        path = str(Path(app_dir).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing == name or name.startswith(missing + "."):
            raise LoadError(f'Could not import module "{name}".') from None
        raise


def _import_file(path: Path) -> ModuleType:
    if path.suffix != ".py":
        raise LoadError(f'"{path}" is not a Python file (expected a path ending in .py).')
    if not path.is_file():
        raise LoadError(f'File "{path}" does not exist.')
    path = path.resolve()
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = path.stem
    known = sys.modules.get(name)
    if known is not None and getattr(known, "__file__", None) != str(path):
        name = f"relaxml_target_{name}"  # never shadow a module already imported (json, ...)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise LoadError(f'Could not load "{path}" as a Python module.')
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _named_class(module: ModuleType, attr: str, target: str) -> type[LabelStudioModel]:
    obj: object = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise LoadError(
                f'Attribute "{attr}" not found in module "{module.__name__}".'
            ) from None
    if not (isinstance(obj, type) and issubclass(obj, LabelStudioModel)):
        raise LoadError(
            f'"{target}" is {_describe(obj)}, not a subclass of relaxml.LabelStudioModel.'
        )
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise LoadError(f'"{target}" is abstract: implement {missing}.')
    return obj


def _only_class(module: ModuleType, name: str) -> type[LabelStudioModel]:
    models = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, LabelStudioModel)
        and obj.__module__ == module.__name__
    ]
    found = [cls for cls in models if not inspect.isabstract(cls)]
    if len(found) == 1:
        return found[0]
    if not found and models:
        abstract = ", ".join(sorted(cls.__name__ for cls in models))
        raise LoadError(
            f'Module "{name}" defines only abstract models ({abstract}): implement predict.'
        )
    if not found:
        raise LoadError(f'Module "{name}" defines no relaxml.LabelStudioModel subclass.')
    names = ", ".join(sorted(cls.__name__ for cls in found))
    example = f"{name}:{found[0].__name__}"
    raise LoadError(
        f'Module "{name}" defines several models ({names}): name one, e.g. "{example}".'
    )


def _describe(obj: object) -> str:
    if isinstance(obj, type):
        return f"the class {obj.__name__}"
    if inspect.isfunction(obj):
        return f"the function {obj.__name__}"
    if inspect.ismodule(obj):
        return f"the module {obj.__name__}"
    return f"an instance of {type(obj).__name__}"
