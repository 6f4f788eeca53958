"""MLflow model folders (an `MLmodel` file), loaded as `mlflow.pyfunc`: the extra `amms_cli[mlflow]`.
The model's signature becomes its input columns (the `dataframe` servable) and its requirements.txt
the pins of the image. A pyfunc model may unpickle its artifacts, so the format runs code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, missing_extra
from amms_cli.repository.manifest import ColumnInfo, ColumnType

MLMODEL = "MLmodel"
REQUIREMENTS = "requirements.txt"
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;#]+)")
# MLflow column types -> amms column types
_TYPES: dict[str, ColumnType] = {
    "double": "float",
    "float": "float",
    "long": "int",
    "integer": "int",
    "boolean": "bool",
    "string": "string",
    "datetime": "datetime",
}


class MLflowModel(Model):
    framework = "mlflow"

    def __init__(self, model: Any, folder: Path) -> None:
        self.obj = model
        self.input_columns = columns_of_signature(model)
        self.requirements = pinned_requirements(folder / REQUIREMENTS)

    def predict(self, inputs: Any) -> Any:
        return self.obj.predict(inputs)

    def close(self) -> None:
        self.obj = None


def columns_of_signature(model: Any) -> list[ColumnInfo] | None:
    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    if schema is None or not schema.has_input_names():
        return None
    columns = []
    for spec in schema.inputs:
        kind = _TYPES.get(str(getattr(spec.type, "name", spec.type)).lower(), "any")
        columns.append(ColumnInfo(name=spec.name, type=kind, nullable=not getattr(spec, "required", True)))
    return columns


def pinned_requirements(path: Path) -> dict[str, str]:
    """The exact pins of an MLflow requirements.txt (`name==version` lines)."""
    if not path.is_file():
        return {}
    pins = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _PIN.match(line)
        if match:
            pins[match[1]] = match[2]
    return pins


def load(folder: Path, options: LoadOptions) -> Model:
    try:
        import mlflow.pyfunc
    except ImportError:
        raise missing_extra("mlflow") from None
    return MLflowModel(mlflow.pyfunc.load_model(str(folder)), folder)


def _is_mlflow(path: Path) -> bool:
    return path.is_dir() and (path / MLMODEL).is_file()


def _modules(path: Path) -> set[str]:
    return {"mlflow"}


MLFLOW = LoaderFacts(
    name="mlflow",
    description="MLflow model folders (with an MLmodel file), as pyfunc; pip install 'amms_cli[mlflow]'",
    load=load,
    detect=_is_mlflow,
    runs_code=True,  # a pyfunc model may unpickle its artifacts
    modules_named=_modules,
    folder=True,
)
