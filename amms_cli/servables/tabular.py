"""`tabular`: rows of numbers (`[[5.1, 3.5, 1.4, 0.2]]`), one row, records by feature name
(`[{"sepal_length": 5.1, ...}]`) or named columns, checked against the recorded width and feature names."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.servables.base import Servable, numeric_array, require_non_empty
from amms_cli.servables.tensors import INPUT_NAME, TensorSpec, datatype_of_dtype

NO_NAMES = "this model has no recorded feature names; send rows of numbers"


class Tabular(Servable):
    name = "tabular"

    def parse(self, value: Any) -> Any:
        require_non_empty(value)
        if isinstance(value, dict) or (isinstance(value, list) and isinstance(value[0], dict)):
            rows = self._records(value if isinstance(value, list) else [value])
        else:
            rows = numeric_array(value, missing=self.info.allows_missing)
            if rows.ndim == 1:
                rows = rows.reshape(1, -1)
            elif rows.ndim != 2:
                raise InvalidInput(f"inputs: expected rows of numbers (2 dimensions), got {rows.ndim} dimensions")
        width = self.info.n_features_in
        if width is not None and rows.shape[1] != width:
            raise InvalidInput(f"inputs: expected {width} features per row, got {rows.shape[1]}")
        return self._frame(rows)

    def from_columns(self, columns: dict[str, Any]) -> Any:
        """Columns by feature name; a model without recorded names takes one tensor of rows."""
        if not self.info.feature_names_in:
            return super().from_columns(columns)
        return self.parse(columns_to_records(columns, self.info.feature_names_in, "inputs"))

    def _records(self, records: list[Any]) -> np.ndarray:
        names = self.info.feature_names_in
        if not names:
            raise InvalidInput(f"inputs: {NO_NAMES}")
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidInput(f"inputs[{index}]: expected an object of feature values")
            require_names(record, names, f"inputs[{index}]", "feature")
        return numeric_array([[record[n] for n in names] for record in records], missing=self.info.allows_missing)

    def _frame(self, rows: np.ndarray) -> Any:
        """Models fitted on a DataFrame warn when given bare arrays, so give them a DataFrame back."""
        if not self.info.feature_names_in:
            return rows
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows, columns=self.info.feature_names_in)

    def input_tensor(self) -> TensorSpec:
        return TensorSpec(INPUT_NAME, datatype_of_dtype(self.info.dtype), [-1, self.info.n_features_in or -1])

    def column_tensors(self) -> list[TensorSpec]:
        datatype = datatype_of_dtype(self.info.dtype)
        return [TensorSpec(name, datatype, [-1]) for name in self.info.feature_names_in or []]

    def count(self, model_input: Any) -> int:
        return int(model_input.shape[0])

    def concat(self, model_inputs: list[Any]) -> Any:
        if hasattr(model_inputs[0], "iloc"):
            import pandas as pd

            return pd.concat(model_inputs, ignore_index=True)
        return np.concatenate(model_inputs)

    def schema(self) -> dict[str, Any]:
        width, names = self.info.n_features_in, self.info.feature_names_in
        row: dict[str, Any] = {"type": "array", "items": {"type": "number"}}
        if width is not None:
            row |= {"minItems": width, "maxItems": width}
        rows = {"type": "array", "items": row, "minItems": 1, "description": "rows of numbers"}
        if not names:
            return rows
        record = {
            "type": "object",
            "properties": {name: {"type": "number"} for name in names},
            "required": list(names),
            "additionalProperties": False,
        }
        records = {"type": "array", "items": record, "minItems": 1, "description": "records by feature name"}
        return {"anyOf": [rows, records]}

    def example(self) -> Any:
        if self.info.example is not None:
            return self.info.example
        if self.info.n_features_in is not None:
            return [[0.0] * self.info.n_features_in]
        return None


def columns_to_records(columns: dict[str, Any], feature_names: list[str] | None, what: str) -> list[dict[str, Any]]:
    """Named columns (`{"sepal_length": [5.1, 6.2], ...}`) as one record per row. A scalar column is
    one row. The names must be exactly the recorded feature names; the values are checked later."""
    if not feature_names:
        raise InvalidInput(f"{what}: {NO_NAMES}")
    require_names(columns, feature_names, what, "column")
    lists = {name: value if isinstance(value, list) else [value] for name, value in columns.items()}
    lengths = {name: len(values) for name, values in lists.items()}
    first = feature_names[0]
    uneven = [name for name in feature_names if lengths[name] != lengths[first]]
    if uneven:
        raise InvalidInput(
            f"{what}: column '{uneven[0]}' has {lengths[uneven[0]]} values but '{first}' has {lengths[first]}"
        )
    return [dict(zip(feature_names, row, strict=True)) for row in zip(*(lists[n] for n in feature_names), strict=True)]


def require_names(given: dict[str, Any], names: list[str], where: str, noun: str, most: int = 1000) -> None:
    """`given` has exactly the recorded names as keys (in any order); errors list at most `most`."""
    if len(given) == len(names) and all(name in given for name in names):
        return
    expected = str(names) if len(names) <= most else f"{names[:most]} and {len(names) - most} more"
    missing = next((name for name in names if name not in given), None)
    if missing is not None:
        raise InvalidInput(f"{where}: missing {noun} '{missing}' (expected {expected})")
    known = set(names)
    unknown = next(key for key in given if key not in known)
    shown = unknown if len(unknown) <= 60 else unknown[:57] + "..."
    raise InvalidInput(f"{where}: unknown {noun} '{shown}' (expected {expected})")
