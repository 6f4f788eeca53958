"""`ndarray`: n-dimensional numeric arrays (images, sequences), checked against the recorded shape.

The recorded shape includes the batch dimension first; `null` dimensions take any size. A request
may leave out the batch dimension to send a single instance."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.servables.base import Servable, numeric_array, require_non_empty
from amms_cli.servables.tensors import INPUT_NAME, TensorSpec, datatype_of_dtype


class NdArray(Servable):
    name = "ndarray"

    def parse(self, value: Any) -> Any:
        require_non_empty(value)
        array = numeric_array(value)
        shape = self.info.shape
        if shape:
            if array.ndim == len(shape) - 1:
                array = array[np.newaxis, ...]
            if array.ndim != len(shape):
                raise InvalidInput(
                    f"inputs: expected {len(shape)} dimensions (shape {_shape_text(shape)}), got {array.ndim}"
                )
            for axis, (want, got) in enumerate(zip(shape, array.shape, strict=True)):
                if axis > 0 and want is not None and want != got:
                    raise InvalidInput(f"inputs: expected shape {_shape_text(shape)}, got {list(array.shape)}")
        elif array.ndim == 0:
            array = array.reshape(1, 1)
        dtype = np.dtype(self.info.dtype) if self.info.dtype else np.float64
        return array.astype(dtype, copy=False)

    def input_tensor(self) -> TensorSpec:
        shape = self.info.shape or [None, None]
        dims = [-1, *(-1 if d is None else d for d in shape[1:])]
        return TensorSpec(INPUT_NAME, datatype_of_dtype(self.info.dtype), dims)

    def count(self, model_input: Any) -> int:
        return int(model_input.shape[0])

    def schema(self) -> dict[str, Any]:
        depth = len(self.info.shape) if self.info.shape else 2
        schema: dict[str, Any] = {"type": "number"}
        for _ in range(depth):
            schema = {"type": "array", "items": schema}
        return schema | {"description": f"numeric array of shape {_shape_text(self.info.shape or [None, None])}"}

    def example(self) -> Any:
        if self.info.example is not None:
            return self.info.example
        shape = self.info.shape
        row_shape = shape[1:] if shape else []
        if shape and all(d is not None for d in row_shape):
            return np.zeros([1, *(d for d in row_shape if d is not None)]).tolist()
        return None


def _shape_text(shape: list[int | None]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"
