"""A custom Python model: a version folder with a `model.py` defining a class that has
`load(self, path)` and `predict(self, inputs)` (optionally `predict_proba(self, inputs)`).

A class named `Model` is used if present; otherwise the one class defined in model.py with both
methods. It is instantiated without arguments and `load` gets the version folder as a string.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from amms_cli.errors import ModelLoadError
from amms_cli.loaders.base import LoaderFacts, LoadOptions, ObjectModel

MODEL_FILE = "model.py"


def _import_file(path: Path) -> ModuleType:
    module_name = f"amms_custom_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def find_model_class(module: ModuleType) -> type[Any]:
    def usable(cls: Any) -> bool:
        return callable(getattr(cls, "load", None)) and callable(getattr(cls, "predict", None))

    named = getattr(module, "Model", None)
    if inspect.isclass(named) and usable(named):
        return named
    candidates = [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if cls.__module__ == module.__name__ and usable(cls)
    ]
    if len(candidates) != 1:
        raise ModelLoadError(
            f"{MODEL_FILE} must define one class with load(self, path) and predict(self, inputs)"
            f" (found {len(candidates)})",
            hint="name it `Model` to pick it among several",
        )
    return candidates[0]


class CustomModel(ObjectModel):
    def __init__(self, obj: Any, module_name: str) -> None:
        super().__init__(obj, "custom")
        self.module_name = module_name

    def close(self) -> None:
        super().close()
        sys.modules.pop(self.module_name, None)


def load(folder: Path, options: LoadOptions) -> CustomModel:
    """Import model.py as a module of its own and load the model; a failure anywhere removes the
    module again (with everything it holds), so a retried load does not pile up copies."""
    module = _import_file(folder / MODEL_FILE)
    try:
        instance = find_model_class(module)()
        instance.load(str(folder))
    except BaseException:
        sys.modules.pop(module.__name__, None)
        raise
    return CustomModel(instance, module.__name__)


def _is_custom(path: Path) -> bool:
    return path.is_dir() and (path / MODEL_FILE).is_file()


def modules_named(folder: Path) -> set[str]:
    """What the folder's Python files import (absolute imports; their own modules are filtered later)."""
    return {name for source in folder.rglob("*.py") for name in _imports_of(source)}


def _imports_of(source: Path) -> set[str]:
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


CUSTOM = LoaderFacts(
    name="custom",
    description=f"a folder with a {MODEL_FILE} defining a class with load() and predict()",
    load=load,
    detect=_is_custom,
    runs_code=True,
    modules_named=modules_named,
    folder=True,
    servable="custom",
    files_decide=False,
)
