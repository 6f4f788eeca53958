"""`custom`: the request's input JSON goes unchanged to a custom model's own `predict`."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.base import Servable, require_non_empty
from amms_cli.servables.tensors import INPUT_NAME, Tensor, TensorSpec, datatype_of_values


class Custom(Servable):
    """A custom model that declares itself batchable (`batchable = True` on its class) takes a list of
    rows and returns one output per row: such requests are merged into one call."""

    name = "custom"

    def __init__(self, info: InputInfo, model_name: str) -> None:
        super().__init__(info, model_name)
        self.batchable = info.row_independent

    def parse(self, value: Any) -> Any:
        require_non_empty(value)
        if self.batchable and not isinstance(value, list):
            raise InvalidInput(f"inputs: model '{self.model_name}' takes a list of rows, got {type(value).__name__}")
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
        return len(model_input) if self.batchable else 1

    def concat(self, model_inputs: list[Any]) -> Any:
        return [row for rows in model_inputs for row in rows]

    def schema(self) -> dict[str, Any]:
        return {"description": "any JSON value; the model's own predict() interprets it"}
