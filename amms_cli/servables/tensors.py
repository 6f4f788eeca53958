"""Typed tensors, the common language of the protocols' metadata and of v2 requests: a name, an Open
Inference Protocol datatype (FP64, INT64, BYTES, ...) and a shape. TF Serving maps the same datatypes
onto its DT_* names; a servable describes its input with them and converts a request tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from amms_cli.errors import InvalidInput

INPUT_NAME = "input"  # the one input tensor of a model that takes one

# Open Inference Protocol datatype -> numpy dtype (BYTES elements are Python str after decoding)
DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
# numpy dtype names (as recorded in InputInfo.dtype) -> datatypes
_BY_DTYPE_NAME = {dtype.name: datatype for datatype, dtype in DATATYPES.items()} | {"str": "BYTES"}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """What a tensor should be: -1 in `shape` for a dimension of any size."""

    name: str
    datatype: str
    shape: list[int]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


@dataclass(frozen=True, slots=True)
class Tensor:
    """A tensor a request sent, decoded: `array` is shaped; BYTES tensors hold str objects."""

    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray


def datatype_of_dtype(dtype_name: str | None) -> str:
    """The datatype of a recorded numpy dtype name (float64 when none was recorded)."""
    return _BY_DTYPE_NAME.get(dtype_name or "float64", "FP64")


def datatype_of(array: np.ndarray) -> str:
    """The datatype of an array of outputs: numbers keep their kind, everything else is BYTES."""
    return {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}.get(array.dtype.kind, "BYTES")


def datatype_of_values(values: list[Any]) -> str:
    return datatype_of(np.asarray(values))


def check_tensor(tensor: Tensor, spec: TensorSpec) -> None:
    """Refuse a tensor of the wrong kind (text vs numbers) or shape. The batch dimension may be left out
    to send one instance, and text may also come as a column ([N, 1])."""
    expected = f"expected {spec.datatype} of shape {spec.shape}"
    if (spec.datatype == "BYTES") != (tensor.datatype == "BYTES"):
        raise InvalidInput(f"input '{tensor.name}': {expected}, got {tensor.datatype}")
    forms = [spec.shape, spec.shape[1:], *([[-1, 1]] if spec.datatype == "BYTES" else [])]
    if not any(fits(tensor.shape, form) for form in forms):
        raise InvalidInput(f"input '{tensor.name}': {expected}, got shape {tensor.shape}")


def fits(shape: list[int], form: list[int]) -> bool:
    """`shape` matches `form`, where -1 in `form` takes any size."""
    return len(shape) == len(form) and all(want in (-1, got) for got, want in zip(shape, form, strict=True))


def object_array(values: list[Any]) -> np.ndarray:
    """A flat object array (np.asarray would turn equal-length strings into a fixed-width 'U' array)."""
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def output_array(value: Any) -> np.ndarray:
    """A model output (JSON-ready values) as an array of a protocol datatype. Values that form no
    rectangular array of numbers, booleans or strings become one BYTES element of JSON text each."""
    try:
        array = np.asarray(value)
    except ValueError:  # ragged
        array = object_array([orjson.dumps(value).decode()])
    if array.dtype.kind == "U":  # a 'U' array drops trailing NUL characters; keep the str objects
        array = np.array(value, dtype=object)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.dtype.kind == "O":
        flat = [v if isinstance(v, str) else orjson.dumps(v).decode() for v in array.reshape(-1).tolist()]
        array = object_array(flat).reshape(array.shape)
    return array


def output_spec(name: str, value: Any) -> TensorSpec:
    """The tensor a model output (JSON-ready values for a batch of rows) is sent as."""
    array = output_array(value)
    return TensorSpec(name, datatype_of(array), [-1, *array.shape[1:]])
