"""Learning a model's named, typed columns (`ColumnInfo`) when it is added: from a DataFrame example
(its exact dtypes), from JSON records (the kind of each value), and from the model itself (a
ColumnTransformer's column lists, its encoders' categories, its imputers; the tree libraries' own
categorical columns). Duck-typed: nothing here imports scikit-learn or the tree libraries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from amms_cli.repository.manifest import ColumnInfo, ColumnType
from amms_cli.servables.columns import is_missing

IMPUTER_SUFFIX = "Imputer"  # SimpleImputer, KNNImputer, IterativeImputer


def type_of_dtype(dtype: Any) -> ColumnType:
    """The column type of a pandas (or numpy) dtype."""
    kind = getattr(dtype, "kind", "O")
    name = str(dtype)
    if name == "category":
        return "category"
    if name in ("bool", "boolean"):
        return "bool"
    if kind in "iu":
        return "int"
    if kind == "f":
        return "float"
    if kind == "M" or name.startswith("datetime64"):
        return "datetime"
    if name in ("str", "string") or name.startswith("string"):
        return "string"
    return "any"  # object columns: strings or a mix; checked by kind below


def columns_of_frame(frame: Any) -> list[ColumnInfo]:
    """Every column of a pandas DataFrame, with its exact dtype, levels and missing values."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        kind = type_of_dtype(series.dtype)
        present = [value for value in series.tolist() if not is_missing(value)]
        if kind == "any" and present and all(isinstance(value, str) for value in present):
            kind = "string"
        levels = [level for level in series.cat.categories.tolist()] if kind == "category" else None
        columns.append(
            ColumnInfo(
                name=str(name),
                type=kind,
                dtype=str(series.dtype),
                nullable=bool(series.isna().any()),
                levels=levels,
            )
        )
    return columns


def columns_of_records(records: list[dict[str, Any]]) -> list[ColumnInfo]:
    """Columns seen in JSON records: the kind of their values (numbers are floats: JSON cannot say)."""
    names: dict[str, None] = {}
    for record in records:
        names.update(dict.fromkeys(record))
    columns = []
    for name in names:
        values = [record.get(name) for record in records]
        present = [value for value in values if value is not None]
        columns.append(ColumnInfo(name=name, type=_kind_of_values(present), nullable=len(present) < len(values)))
    return columns


def _kind_of_values(values: list[Any]) -> ColumnType:
    if values and all(isinstance(value, bool) for value in values):
        return "bool"
    if values and all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in values):
        return "float"
    if values and all(isinstance(value, str) for value in values):
        return "string"
    return "any"


@dataclass(frozen=True)
class ModelColumn:
    """What a fitted model tells about one of its input columns."""

    kind: ColumnType | None = None  # None: the model does not say
    nullable: bool = False
    levels: list[Any] | None = None
    closed: bool = False
    dtype: str | None = None  # a pandas dtype the model needs (LightGBM's categories)


def columns_of_model(model: Any, names: list[str]) -> dict[str, ModelColumn]:
    """What a scikit-learn style model tells about its named columns: encoders give categories (closed
    when unknown values make them raise), imputers make columns nullable, and an estimator that takes
    the columns as they are needs numbers (nullable when it accepts NaN), except the ones its own API
    marks as categorical (CatBoost, LightGBM, XGBoost, HistGradientBoosting)."""
    transformer = _column_transformer(model)
    if transformer is None:
        return _columns_of_estimator(_final_step(model), names)
    facts: dict[str, ModelColumn] = {}
    for _label, part, selection in getattr(transformer, "transformers_", []):
        if isinstance(part, str) and part == "drop":
            continue
        selected = _selected_names(selection, names)
        steps = _steps(part)
        imputes = any(type(step).__name__.endswith(IMPUTER_SUFFIX) for step in steps)
        encoder = next((step for step in steps if hasattr(step, "categories_")), None)
        for index, name in enumerate(selected):
            if encoder is not None and index < len(encoder.categories_):
                levels = [_plain(level) for level in list(encoder.categories_[index])]
                known = [level for level in levels if not is_missing(level)]
                closed = getattr(encoder, "handle_unknown", "error") == "error"
                nullable = imputes or len(known) < len(levels)
                facts[name] = ModelColumn("category", nullable, known, closed)
            elif imputes:
                facts[name] = ModelColumn(_imputed_kind(steps), nullable=True)
            elif isinstance(part, str) and part == "passthrough":
                facts[name] = ModelColumn(None, nullable=_allows_nan(_final_step(model)))
            else:
                facts[name] = ModelColumn(None)
    return facts


def merge_columns(
    names: list[str], example: list[ColumnInfo] | None, model: dict[str, ModelColumn]
) -> list[ColumnInfo]:
    """One ColumnInfo per name, in the model's order: the example's kind and dtype, the model's levels;
    nullable when either allows missing values."""
    seen = {column.name: column for column in example or []}
    columns = []
    for name in names:
        given = seen.get(name)
        facts = model.get(name, ModelColumn())
        kind = given.type if given is not None and given.type != "any" else facts.kind or "any"
        if facts.kind == "category" and kind in ("string", "float", "int", "any"):
            kind = "category"  # the encoder knows the values; the example's kind alone does not
        columns.append(
            ColumnInfo(
                name=name,
                type=kind,
                dtype=given.dtype if given is not None else facts.dtype,
                nullable=facts.nullable or (given is not None and given.nullable),
                levels=facts.levels if facts.levels is not None else (given.levels if given else None),
                closed=facts.closed,
            )
        )
    return columns


def _columns_of_estimator(model: Any, names: list[str]) -> dict[str, ModelColumn]:
    categorical = _native_categories(model, names)
    if categorical is None:
        return {}  # it takes strings, but does not say which columns: the example has to tell
    numbers = ModelColumn("float", nullable=_allows_nan(model))
    return {name: categorical.get(name, numbers) for name in names}


def _native_categories(model: Any, names: list[str]) -> dict[str, ModelColumn] | None:
    """The columns a tree library treats as categories, from its own API; None when it takes strings
    without saying where."""
    found: dict[str, ModelColumn] = {}
    for index in _call(model, "get_cat_feature_indices") or []:  # CatBoost: strings or integers, no NaN
        found[names[index]] = ModelColumn("category")
    booster = getattr(model, "booster_", None)
    if booster is not None and getattr(booster, "pandas_categorical", None):  # LightGBM on category dtypes
        indices = (getattr(booster, "params", None) or {}).get("categorical_column") or []
        for index, levels in zip(indices, booster.pandas_categorical, strict=False):
            found[names[index]] = ModelColumn("category", nullable=True, levels=list(levels), dtype="category")
    for index, flag in enumerate(getattr(model, "is_categorical_", None) or []):  # HistGradientBoosting
        if flag:
            found[names[index]] = ModelColumn("category", nullable=True)
    xgboost = _call(model, "get_booster")
    for index, kind in enumerate(getattr(xgboost, "feature_types", None) or []):  # XGBoost, enable_categorical
        if kind == "c":
            found[names[index]] = ModelColumn("category", nullable=True, dtype="category")
    if not found and _takes_strings(model):
        return None
    return found


def _call(model: Any, method: str) -> Any:
    function = getattr(model, method, None)
    try:
        return function() if callable(function) else None
    except Exception:  # not fitted, or a framework error: the model does not say
        return None


def _column_transformer(model: Any) -> Any:
    for step in _steps(model):
        if hasattr(step, "transformers_"):
            return step
    return None


def _steps(part: Any) -> list[Any]:
    if isinstance(part, str):
        return []
    steps = getattr(part, "steps", None)
    if isinstance(steps, list):
        return [step for _, step in steps if not isinstance(step, str)]
    return [part]


def _final_step(model: Any) -> Any:
    steps = _steps(model)
    return steps[-1] if steps else model


def _selected_names(selection: Any, names: list[str]) -> list[str]:
    """A ColumnTransformer's column selection as names (it may hold names, positions or a mask)."""
    if isinstance(selection, str):
        return [selection]
    chosen = list(selection) if isinstance(selection, Iterable) else []
    if chosen and all(isinstance(item, bool) for item in chosen):
        return [name for name, keep in zip(names, chosen, strict=False) if keep]
    return [names[item] if isinstance(item, int) and item < len(names) else str(item) for item in chosen]


def _imputed_kind(steps: list[Any]) -> ColumnType:
    imputer = next(step for step in steps if type(step).__name__.endswith(IMPUTER_SUFFIX))
    statistics = getattr(imputer, "statistics_", None)
    if statistics is not None and len(statistics) and all(isinstance(value, str) for value in list(statistics)):
        return "string"
    return "float"


def allows_missing(model: Any) -> bool:
    """The model fills in missing values itself: an imputer among its steps, or an estimator that
    accepts NaN (HistGradientBoosting, most tree libraries)."""
    steps = _steps(model)
    imputes = any(type(step).__name__.endswith(IMPUTER_SUFFIX) for step in steps[:-1])
    return imputes or _allows_nan(_final_step(model))


def _tags(model: Any) -> Any:
    tags = getattr(model, "__sklearn_tags__", None)
    try:
        return tags() if callable(tags) else None
    except Exception:  # a third-party estimator whose tags cannot be built
        return None


def _allows_nan(model: Any) -> bool:
    tags = _tags(model)
    return bool(tags is not None and getattr(tags.input_tags, "allow_nan", False))


def _takes_strings(model: Any) -> bool:
    """Estimators that take categorical or string columns themselves (HistGradientBoosting with
    categorical features, CatBoost): their columns are not all numbers."""
    tags = _tags(model)
    categorical = getattr(model, "is_categorical_", None)
    if categorical is not None and any(bool(flag) for flag in categorical):
        return True
    return bool(tags is not None and getattr(tags.input_tags, "string", False))


def _plain(value: Any) -> Any:
    """numpy scalars as Python values (JSON-ready)."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value
