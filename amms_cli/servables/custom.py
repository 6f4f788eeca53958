"""`custom`: the request's input JSON goes unchanged to a custom model's own `predict`."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.servables.base import Servable, require_non_empty
from amms_cli.servables.tensors import INPUT_NAME, Tensor, TensorSpec, datatype_of_values


class Custom(Servable):
    name = "custom"
    batchable = False

    def parse(self, value: Any) -> Any:
        require_non_empty(value)
        return value

    def from_columns(self, columns: dict[str, Any]) -> Any:
        return self.parse(columns)  # named inputs are JSON like any other

    def from_tensor(self, tensor: Tensor) -> Any:
        return self.parse(tensor.array.tolist())  # the model reads it; no shape to check

    def input_tensor(self) -> TensorSpec | None:
        """Described by the recorded example when that is an array of numbers, booleans or strings."""
        example = self.info.example
        try:
            array = np.asarray(example)
        except ValueError:
            return None
        if example is None or array.ndim == 0 or array.dtype.kind not in "biufU":
            return None
        return TensorSpec(INPUT_NAME, datatype_of_values(example), [-1, *array.shape[1:]])

    def count(self, model_input: Any) -> int:
        return 1

    def schema(self) -> dict[str, Any]:
        return {"description": "any JSON value; the model's own predict() interprets it"}
