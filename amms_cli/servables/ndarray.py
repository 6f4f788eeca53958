"""`ndarray`: n-dimensional numeric arrays (images, sequences), checked against the recorded shape.

The recorded shape includes the batch dimension first; `null` dimensions take any size. A request
may leave out the batch dimension to send a single instance."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.base import Servable, numeric_array, require_non_empty


class NdArray(Servable):
    name = "ndarray"

    def parse(self, inputs: Any, info: InputInfo) -> Any:
        require_non_empty(inputs)
        array = numeric_array(inputs)
        shape = info.shape
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
        dtype = np.dtype(info.dtype) if info.dtype else np.float64
        return array.astype(dtype, copy=False)

    def count(self, model_input: Any) -> int:
        return int(model_input.shape[0])

    def schema(self, info: InputInfo) -> dict[str, Any]:
        depth = len(info.shape) if info.shape else 2
        schema: dict[str, Any] = {"type": "number"}
        for _ in range(depth):
            schema = {"type": "array", "items": schema}
        return schema | {"description": f"numeric array of shape {_shape_text(info.shape or [None, None])}"}

    def example(self, info: InputInfo) -> Any:
        if info.example is not None:
            return info.example
        row_shape = info.shape[1:] if info.shape else []
        if info.shape and all(d is not None for d in row_shape):
            return np.zeros([1, *(d for d in row_shape if d is not None)]).tolist()
        return None


def _shape_text(shape: list[int | None]) -> str:
    return "[" + ", ".join("N" if d is None else str(d) for d in shape) + "]"
