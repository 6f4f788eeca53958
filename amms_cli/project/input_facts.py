"""What a model takes, learnt when it is added: its width and feature names from its own API, its
named and typed columns (from a DataFrame example, JSON records and the model), its input tensor when
the format declares one, and the input kind (servable) that fits it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.errors import ConfigError
from amms_cli.loaders import LoaderFacts, Model
from amms_cli.project.model_columns import (
    allows_missing,
    columns_of_frame,
    columns_of_model,
    columns_of_records,
    merge_columns,
)
from amms_cli.repository.manifest import ColumnInfo, InputInfo

EXAMPLE_ROWS = 2  # rows of a data file recorded as the example
TABLE_SUFFIXES = (".csv",)
# a DataFrame example written by the Python API itself (amms_cli.save_model), its dtypes kept exactly;
# never a user's file (`--example` takes JSON and the TABLE_SUFFIXES only)
FRAME_SUFFIX = ".frame.pkl"


def introspect(model: Model, frame: Any = None, example: Any = None) -> InputInfo:
    """The input facts of a loaded model; `frame` is a DataFrame example, `example` JSON."""
    obj = getattr(model, "obj", None)
    facts: dict[str, Any] = {
        "has_predict_proba": model.has_predict_proba,
        "classes": model.classes,
        "row_independent": model.row_independent,
    }
    declared = model.input_columns  # a format that declares its columns (an MLflow signature)
    names = [column.name for column in declared] if declared is not None else feature_names(obj)
    width = len(declared) if declared is not None else feature_count(obj)
    if width is not None:
        facts["n_features_in"] = width
        facts["allows_missing"] = allows_missing(obj)
    if names is not None:
        facts["feature_names_in"] = names
        known = declared if declared is not None else _example_columns(frame, example)
        facts["columns"] = merge_columns(names, known, columns_of_model(obj, names))
    shape = model.input_shape
    if shape is not None:
        facts["shape"] = shape
        facts["dtype"] = np.dtype(model.input_dtype).name
        if len(shape) == 2 and isinstance(shape[1], int):
            facts["n_features_in"] = shape[1]
    return InputInfo(**facts)


def feature_names(obj: Any) -> list[str] | None:
    """The column names a model was fitted on, from its own API: scikit-learn's feature_names_in_,
    CatBoost's feature_names_, an XGBoost booster's feature_names, LightGBM's feature_name()."""
    for read in _NAME_READERS:
        try:
            names = read(obj)
        except Exception:  # the attribute is missing, or the model raises before it is fitted
            continue
        if names is not None and len(names) and not _generic_names(list(names)):
            return [str(name) for name in names]
    return None


def _sklearn_names(obj: Any) -> Any:
    return obj.feature_names_in_


def _catboost_names(obj: Any) -> Any:
    return obj.feature_names_


def _xgboost_names(obj: Any) -> Any:
    return obj.get_booster().feature_names


def _lightgbm_names(obj: Any) -> Any:
    return obj.booster_.feature_name()


def _xgboost_booster_names(obj: Any) -> Any:
    return obj.feature_names if callable(getattr(obj, "num_features", None)) else None


def _lightgbm_booster_names(obj: Any) -> Any:
    return obj.feature_name()


_NAME_READERS: tuple[Callable[[Any], Any], ...] = (
    _sklearn_names,
    _catboost_names,
    _xgboost_names,
    _lightgbm_names,
    _xgboost_booster_names,
    _lightgbm_booster_names,
)


def _generic_names(names: list[Any]) -> bool:
    """Names a framework makes up for unnamed columns ("0", "1", ... or "Column_0", "f0")."""
    return all(str(name) in (str(index), f"Column_{index}", f"f{index}") for index, name in enumerate(names))


def feature_count(obj: Any) -> int | None:
    """How many features a model takes, from its own API (n_features_in_, CatBoost's feature count,
    a booster's num_features)."""
    for read in _COUNT_READERS:
        try:
            count = read(obj)
        except Exception:  # missing, or a pipeline whose first step has none
            continue
        if isinstance(count, (int, np.integer)) and count > 0:
            return int(count)
    return None


def _sklearn_count(obj: Any) -> Any:
    return obj.n_features_in_


def _catboost_count(obj: Any) -> Any:
    return len(obj.feature_names_)


def _xgboost_count(obj: Any) -> Any:
    return obj.get_booster().num_features()


def _lightgbm_count(obj: Any) -> Any:
    return obj.booster_.num_feature()


def _xgboost_booster_count(obj: Any) -> Any:
    return obj.num_features()


def _lightgbm_booster_count(obj: Any) -> Any:
    return obj.num_feature()


_COUNT_READERS: tuple[Callable[[Any], Any], ...] = (
    _sklearn_count,
    _catboost_count,
    _xgboost_count,
    _lightgbm_count,
    _xgboost_booster_count,
    _lightgbm_booster_count,
)


def _example_columns(frame: Any, example: Any) -> list[ColumnInfo] | None:
    if frame is not None:
        return columns_of_frame(frame)
    records = [example] if isinstance(example, dict) else example
    if not isinstance(records, list) or not records or not all(isinstance(record, dict) for record in records):
        return None
    if any(isinstance(cell, list) for record in records for cell in record.values()):
        return None  # named columns, or a record with a list in it: no kinds to learn
    return columns_of_records(records)


def default_servable(facts: LoaderFacts, model: Model, info: InputInfo, example: Any) -> str:
    if facts.servable is not None:
        return facts.servable
    if info.columns is not None:
        return "dataframe"
    if isinstance(example, str) or (isinstance(example, list) and example and isinstance(example[0], str)):
        return "text_input"
    if info.shape is not None:  # the model declares its input tensor (ONNX)
        if info.dtype == "object":
            return "text_input"
        return "tabular" if len(info.shape) == 2 else "ndarray"
    if info.n_features_in is not None:
        return "tabular"
    if _is_text_pipeline(getattr(model, "obj", None)):
        return "text_input"
    if example is not None and np.asarray(example, dtype=object).ndim > 2:
        return "ndarray"
    return "tabular"


def _is_text_pipeline(obj: Any) -> bool:
    """A text vectorizer anywhere in the pipeline (preprocessing steps such as lowercasing may come first)."""
    steps = [step for _, step in obj.steps] if hasattr(obj, "steps") and obj.steps else [obj]
    return any(callable(getattr(step, "build_analyzer", None)) or hasattr(step, "vocabulary_") for step in steps)


def read_table(path: Path) -> Any:
    """A data file given as the example, as a DataFrame (pandas infers the dtypes, as read_csv does)."""
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError(f"reading {path.name} needs pandas", hint="pip install pandas") from None
    if path.name.endswith(FRAME_SUFFIX):
        return pd.read_pickle(path)
    try:
        return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--example {path}: cannot read it as CSV: {' '.join(str(exc).split())}") from None


def records_of(frame: Any, rows: int = EXAMPLE_ROWS) -> list[dict[str, Any]]:
    """The first rows of a DataFrame as JSON records (missing values as null, dates in ISO 8601)."""
    text = frame.head(rows).to_json(orient="records", date_format="iso")
    return json.loads(text)  # type: ignore[no-any-return]
