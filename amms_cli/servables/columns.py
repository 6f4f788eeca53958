"""Named, typed columns at request time: each value a request sends is checked against its recorded
column (`ColumnInfo`), and the checked values become a pandas DataFrame in the model's column order and
dtypes. pandas is imported only where a DataFrame is built."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import ColumnInfo


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or type(value).__name__ == "NAType"


@dataclass(frozen=True, slots=True)
class Table:
    """The checked values of one request's columns (or of a merged batch), by column name."""

    values: dict[str, list[Any]]
    rows: int


_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "category": "one of the known values",
    "datetime": "a date-time string (ISO 8601)",
    "any": "a single value",
}


def describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def expected_text(column: ColumnInfo) -> str:
    if column.type == "category" and column.levels is not None:
        shown = column.levels[:20]
        more = f" and {len(column.levels) - 20} more" if len(column.levels) > 20 else ""
        return f"one of {shown}{more}"
    return _KIND_TEXT[column.type]


def check_values(column: ColumnInfo, values: list[Any]) -> None:
    """Every value of a request's column is of the column's type (or null where it may be missing)."""
    accepts = _ACCEPTS[column.type]
    for row, value in enumerate(values):
        if value is None:
            if not column.nullable:
                raise InvalidInput(
                    f"column '{column.name}' row {row}: null is not accepted (expected {expected_text(column)})"
                )
            continue
        if not accepts(column, value):
            raise InvalidInput(
                f"column '{column.name}' row {row}: expected {expected_text(column)}, got {describe_value(value)}"
            )


def _is_int(column: ColumnInfo, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(column: ColumnInfo, value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_bool(column: ColumnInfo, value: Any) -> bool:
    return isinstance(value, bool)


def _is_string(column: ColumnInfo, value: Any) -> bool:
    return isinstance(value, str)


def _is_datetime(column: ColumnInfo, value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _is_scalar(column: ColumnInfo, value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) and not (isinstance(value, float) and not math.isfinite(value))


def _is_level(column: ColumnInfo, value: Any) -> bool:
    if not _is_scalar(column, value):
        return False
    levels = column.levels
    if levels is None or not levels:
        return True
    if column.closed:
        return value in levels
    # an open category takes any value of the levels' kind; the model decides about unknown ones
    return isinstance(value, str) == isinstance(levels[0], str)


_ACCEPTS = {
    "int": _is_int,
    "float": _is_number,
    "bool": _is_bool,
    "string": _is_string,
    "datetime": _is_datetime,
    "category": _is_level,
    "any": _is_scalar,
}


def build_frame(columns: list[ColumnInfo], values: dict[str, list[Any]]) -> Any:
    """A pandas DataFrame of checked values, its columns in the model's order and of the dtypes the
    model saw at fit time: missing values become NaN (pandas' own marker, which imputers look for)."""
    import pandas as pd

    arrays = [_series(column, values[column.name]) for column in columns]
    names = pd.Index([column.name for column in columns])
    rows = pd.RangeIndex(len(arrays[0]) if arrays else 0)
    from_arrays = getattr(pd.DataFrame, "_from_arrays", None)
    if from_arrays is not None:
        # The columns are already arrays of the right dtype and length: pandas' own constructor for
        # that case skips the inference DataFrame(dict) does, 26 us instead of 72 us for 4 columns.
        return from_arrays(arrays, columns=names, index=rows, verify_integrity=False)
    return pd.DataFrame(dict(zip(names, arrays, strict=True)), index=rows, copy=False)


def _series(column: ColumnInfo, values: list[Any]) -> Any:
    import numpy as np
    import pandas as pd

    missing = any(value is None for value in values)
    if column.type == "float" or (column.type == "int" and missing):
        return np.array([np.nan if value is None else value for value in values], dtype=np.float64)
    if column.type == "int":
        return np.array(values, dtype=np.int64)
    if column.type == "bool" and not missing:
        return np.array(values, dtype=np.bool_)
    if column.type == "datetime":
        return pd.to_datetime(pd.Series(values, dtype=object), format="ISO8601", errors="raise")
    if column.dtype == "category":
        known = set(column.levels or [])  # a value outside the levels is a missing one, as pandas will have it
        return pd.Categorical([value if value in known else np.nan for value in values], categories=column.levels)
    cells = np.empty(len(values), dtype=object)
    cells[:] = [np.nan if value is None else value for value in values]
    if (
        column.dtype is not None
        and column.dtype not in ("object", "category")
        and not column.dtype.startswith(("int", "float", "bool", "datetime"))
    ):
        return pd.array(cells, dtype=column.dtype)
    return cells
