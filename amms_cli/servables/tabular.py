"""`tabular`: rows of numbers (`[[5.1, 3.5, 1.4, 0.2]]`), one row, or records by feature name
(`[{"sepal_length": 5.1, ...}]`), checked against the recorded width and feature names."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.base import Servable, numeric_array, require_non_empty


class Tabular(Servable):
    name = "tabular"

    def parse(self, inputs: Any, info: InputInfo) -> Any:
        require_non_empty(inputs)
        if isinstance(inputs, dict) or (isinstance(inputs, list) and isinstance(inputs[0], dict)):
            rows = self._records(inputs if isinstance(inputs, list) else [inputs], info)
        else:
            rows = numeric_array(inputs)
            if rows.ndim == 1:
                rows = rows.reshape(1, -1)
            elif rows.ndim != 2:
                raise InvalidInput(f"inputs: expected rows of numbers (2 dimensions), got {rows.ndim} dimensions")
        width = info.n_features_in
        if width is not None and rows.shape[1] != width:
            raise InvalidInput(f"inputs: expected {width} features per row, got {rows.shape[1]}")
        return self._frame(rows, info)

    def _records(self, records: list[Any], info: InputInfo) -> np.ndarray:
        names = info.feature_names_in
        if not names:
            raise InvalidInput("inputs: this model has no recorded feature names; send rows of numbers")
        known = set(names)
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidInput(f"inputs[{index}]: expected an object of feature values")
            missing = [n for n in names if n not in record]
            if missing:
                raise InvalidInput(f"inputs[{index}]: missing feature '{missing[0]}' (expected {names})")
            unknown = [k for k in record if k not in known]
            if unknown:
                raise InvalidInput(f"inputs[{index}]: unknown feature '{unknown[0]}' (expected {names})")
        return numeric_array([[record[n] for n in names] for record in records])

    @staticmethod
    def _frame(rows: np.ndarray, info: InputInfo) -> Any:
        """Models fitted on a DataFrame warn when given bare arrays, so give them a DataFrame back."""
        if not info.feature_names_in:
            return rows
        try:
            import pandas as pd
        except ImportError:
            return rows
        return pd.DataFrame(rows, columns=info.feature_names_in)

    def count(self, model_input: Any) -> int:
        return int(model_input.shape[0])

    def concat(self, model_inputs: list[Any]) -> Any:
        if hasattr(model_inputs[0], "iloc"):
            import pandas as pd

            return pd.concat(model_inputs, ignore_index=True)
        return np.concatenate(model_inputs)

    def schema(self, info: InputInfo) -> dict[str, Any]:
        row: dict[str, Any] = {"type": "array", "items": {"type": "number"}}
        if info.n_features_in is not None:
            row |= {"minItems": info.n_features_in, "maxItems": info.n_features_in}
        rows = {"type": "array", "items": row, "minItems": 1, "description": "rows of numbers"}
        if not info.feature_names_in:
            return rows
        record = {
            "type": "object",
            "properties": {name: {"type": "number"} for name in info.feature_names_in},
            "required": list(info.feature_names_in),
            "additionalProperties": False,
        }
        records = {"type": "array", "items": record, "minItems": 1, "description": "records by feature name"}
        return {"anyOf": [rows, records]}

    def example(self, info: InputInfo) -> Any:
        if info.example is not None:
            return info.example
        if info.n_features_in is not None:
            return [[0.0] * info.n_features_in]
        return None
