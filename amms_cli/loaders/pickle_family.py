"""pickle, cloudpickle and joblib artifacts. Unpickling runs code: callers verify checksums first."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from amms_cli.loaders.base import Model, ObjectModel

_FRAMEWORKS = {
    "sklearn": "scikit-learn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "imblearn": "imbalanced-learn",
    "statsmodels": "statsmodels",
}


def read_pickle(path: Path) -> Any:
    with path.open("rb") as handle:
        return pickle.load(handle)


def read_cloudpickle(path: Path) -> Any:
    import cloudpickle  # noqa: F401 - objects pickled by value need its reducers importable

    return read_pickle(path)


def read_joblib(path: Path) -> Any:
    import joblib

    return joblib.load(path)


READERS = {"pickle": read_pickle, "cloudpickle": read_cloudpickle, "joblib": read_joblib}


def framework_of(obj: Any) -> str:
    root = type(obj).__module__.split(".")[0]
    return _FRAMEWORKS.get(root, root if root not in {"__main__", "builtins"} else "python")


def load(path: Path, loader: str) -> Model:
    obj = READERS[loader](path)
    return ObjectModel(obj, framework_of(obj))
