"""What every format module declares (`LoaderFacts`: how its files are recognised and loaded, whether
loading runs code, what to pin, where it predicts), the model interface its loader returns
(`predict`, optional `predict_proba`, `close`), and model outputs as JSON-ready values."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from amms_cli.errors import ModelLoadError, PredictionError
from amms_cli.repository.manifest import ColumnInfo


@dataclass(frozen=True)
class LoadOptions:
    """What the publisher decided about loading a version, recorded in its manifest."""

    trusted_types: tuple[str, ...] = ()  # skops: types trusted beyond skops' own defaults


@dataclass(frozen=True)
class Writer:
    """How `amms_cli.save_model` writes an in-memory object in a format (the format's own save call)."""

    accepts: Callable[[Any], bool]  # is this object one the format holds natively?
    write: Callable[[Any, Path], Path]  # (object, path without suffix) -> the file or folder written


def with_suffix(target: Path, suffix: str) -> Path:
    """`target` (a path without suffix, which may contain dots) with `suffix` appended."""
    return target.parent / f"{target.name}{suffix}"


def save_model_writer(module: str, name: str, suffix: str) -> Writer:
    """The writer of a library whose objects save themselves with `obj.save_model(path)` (the
    XGBoost and LightGBM boosters, CatBoost) into a file named with `suffix`."""

    def write(obj: Any, target: Path) -> Path:
        path = with_suffix(target, suffix)
        obj.save_model(str(path))
        return path

    return Writer(lambda obj: instance_of(obj, module, name), write)


def instance_of(obj: Any, module: str, name: str) -> bool:
    """isinstance(obj, module.name), without importing the library: an object of a library's class
    means the library is already imported."""
    if sys.modules.get(module.split(".")[0]) is None:
        return False
    cls: Any = sys.modules.get(module)
    for part in name.split("."):
        cls = getattr(cls, part, None)
    return isinstance(cls, type) and isinstance(obj, cls)


@dataclass(frozen=True)
class LoaderFacts:
    """One model format, declared once in its module under `loaders/`."""

    name: str  # the manifest's `loader` and `--format NAME`
    description: str  # what files it takes, for help texts
    load: Callable[[Path, LoadOptions], Model]
    detect: Callable[[Path], bool]  # from the file's content (or folder): is this one of mine?
    runs_code: bool  # loading executes code from the artifact (see README "Security")
    modules_named: Callable[[Path], set[str]]  # modules the artifact itself names, read without loading it
    requirements: tuple[str, ...] = ()  # distributions loading needs beside what the model imports
    predicts_serially: bool = False  # GIL-bound: one call at a time, on a thread of the model's own
    folder: bool = False  # the artifact is a folder, not one file
    servable: str | None = None  # the input kind it always takes, unless the config says otherwise
    suffixes: tuple[str, ...] = ()  # how its files are usually named (detection is by content)
    # files that look like this format's but that it cannot serve: (what they are, what to do)
    misfit: Callable[[Path], tuple[str, str] | None] | None = None
    writer: Writer | None = None  # the Python API saves objects this format holds natively with it
    # what a load gives depends on the artifact's bytes alone (custom code may read anything else), so
    # a reload of files whose checksums match need not be smoke-checked again (the model cache)
    files_decide: bool = True


def no_modules(path: Path) -> set[str]:
    return set()


def head_of(path: Path, size: int = 16) -> bytes:
    """The first bytes of a file (nothing for a folder), for detection by content."""
    if not path.is_file():
        return b""
    with path.open("rb") as handle:
        return handle.read(size)


def missing_extra(extra: str, module: str | None = None) -> ModelLoadError:
    """The error for a format whose library is not installed, naming the pip install to run."""
    return ModelLoadError(
        f"{extra} models need the {module or extra} library, which is not installed",
        hint=f"pip install 'amms_cli[{extra}]'",
    )


class Model:
    """A loaded model version. Loaders wrap whatever the framework gives them in one of these."""

    framework: str = "unknown"
    # Formats that declare their input tensor (ONNX) set these; per-row shape has None for any size.
    input_shape: list[int | None] | None = None
    input_dtype: Any = None  # a numpy dtype
    input_columns: list[ColumnInfo] | None = None  # formats that declare named columns (MLflow signatures)
    requirements: Mapping[str, str] = MappingProxyType({})  # pins the saved model declares (MLflow)

    def predict(self, inputs: Any) -> Any:
        raise NotImplementedError

    @property
    def has_predict_proba(self) -> bool:
        return False

    @property
    def row_independent(self) -> bool:
        """Each row is predicted on its own (so requests can be merged into one call and split back)."""
        return False

    def predict_proba(self, inputs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} gives no class probabilities")

    @property
    def classes(self) -> list[Any] | None:
        return None

    def close(self) -> None:
        """Release what the model holds (sessions, files). Called once when a version is unloaded."""


class ScoreModel(Model):
    """A booster that returns scores: probabilities of the positive class (binary), one per class
    (multiclass), or values (regression). Labels are class ids 0..k-1, as the booster was trained on."""

    def __init__(self, framework: str, kind: str, n_classes: int) -> None:
        self.framework = framework
        self.kind = kind  # "binary", "multiclass" or "regression"
        self.n_classes = n_classes

    def scores(self, inputs: Any) -> np.ndarray:
        raise NotImplementedError

    def predict(self, inputs: Any) -> Any:
        scores = self.scores(inputs)
        if self.kind == "binary":
            return (scores > 0.5).astype(np.int64)
        if self.kind == "multiclass":
            return np.argmax(scores, axis=1).astype(np.int64)
        return scores

    @property
    def has_predict_proba(self) -> bool:
        return self.kind != "regression"

    def predict_proba(self, inputs: Any) -> Any:
        scores = self.scores(inputs)
        if self.kind == "binary":
            return np.column_stack([1.0 - scores, scores])
        if self.kind == "multiclass":
            return scores
        return super().predict_proba(inputs)

    @property
    def classes(self) -> list[Any] | None:
        return list(range(self.n_classes)) if self.kind != "regression" else None

    @property
    def row_independent(self) -> bool:
        return True


ROW_INDEPENDENT_FRAMEWORKS = frozenset({"scikit-learn", "xgboost", "lightgbm", "catboost", "imbalanced-learn"})


class ObjectModel(Model):
    """Any Python object with a `predict` method (scikit-learn estimators and pipelines, the
    scikit-learn wrappers of XGBoost, LightGBM and CatBoost, a user's custom class)."""

    def __init__(self, obj: Any, framework: str) -> None:
        if not callable(getattr(obj, "predict", None)):
            raise TypeError(f"the loaded {type(obj).__name__} object has no predict() method")
        self.obj = obj
        self.framework = framework

    def predict(self, inputs: Any) -> Any:
        return self.obj.predict(inputs)

    @property
    def has_predict_proba(self) -> bool:
        # scikit-learn exposes predict_proba through `available_if`, so hasattr tells the truth
        return callable(getattr(self.obj, "predict_proba", None))

    @property
    def row_independent(self) -> bool:
        """Estimators of the libraries known to predict row by row, or an object that says so itself
        (a custom model class with `batchable = True`)."""
        return self.framework in ROW_INDEPENDENT_FRAMEWORKS or getattr(self.obj, "batchable", False) is True

    def predict_proba(self, inputs: Any) -> Any:
        if not self.has_predict_proba:
            return super().predict_proba(inputs)
        return self.obj.predict_proba(inputs)

    @property
    def classes(self) -> list[Any] | None:
        classes = getattr(self.obj, "classes_", None)
        if classes is None:
            return None
        return np.asarray(classes).tolist()  # type: ignore[no-any-return]

    def close(self) -> None:
        close = getattr(self.obj, "close", None)
        if callable(close):
            close()
        self.obj = None


def jsonable(value: Any) -> Any:
    """Model output as JSON-ready Python values (numpy arrays and scalars become lists and numbers)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return [jsonable(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise PredictionError(f"model returned a {type(value).__name__}, which cannot be sent as JSON")
