"""A model's inputs and outputs as named, typed tensors (for the TF Serving and v2 metadata), and the
mapping of named columns onto rows by the recorded feature names (TF Serving `inputs`, v2 tensors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.serving.registry import LoadedVersion

INPUT_NAME = "input"
PREDICT = "predict"  # always available
PREDICT_PROBA = "predict_proba"  # when the model gives class probabilities

# numpy dtype names (as recorded in InputInfo.dtype) -> Open Inference Protocol datatypes
V2_DATATYPES = {
    "bool": "BOOL",
    "int8": "INT8",
    "int16": "INT16",
    "int32": "INT32",
    "int64": "INT64",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "float16": "FP16",
    "float32": "FP32",
    "float64": "FP64",
    "object": "BYTES",
    "str": "BYTES",
}


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str  # an Open Inference Protocol datatype: FP64, INT64, BYTES, ...
    shape: list[int]  # -1 for a dimension of any size

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.shape}


def input_spec(loaded: LoadedVersion) -> TensorSpec | None:
    """The one input tensor the servable takes. A `custom` model reads any JSON, so it is described by
    its recorded example when that is an array (None otherwise)."""
    info, servable = loaded.info, loaded.servable.name
    if servable == "text_input":
        return TensorSpec(INPUT_NAME, "BYTES", [-1])
    datatype = V2_DATATYPES.get(info.dtype or "float64", "FP64")
    if servable == "tabular":
        return TensorSpec(INPUT_NAME, datatype, [-1, info.n_features_in or -1])
    if servable == "ndarray":
        shape = info.shape or [None, None]
        return TensorSpec(INPUT_NAME, datatype, [-1, *(-1 if d is None else d for d in shape[1:])])
    return _spec_of_example(info.example)


def _spec_of_example(example: Any) -> TensorSpec | None:
    try:
        array = np.asarray(example)
    except ValueError:
        return None
    if example is None or array.ndim == 0 or array.dtype.kind not in "biufU":
        return None
    return TensorSpec(INPUT_NAME, datatype_of_values(example), [-1, *array.shape[1:]])


def output_specs(loaded: LoadedVersion) -> list[TensorSpec]:
    classes = loaded.info.classes or loaded.model.classes
    outputs = [TensorSpec(PREDICT, datatype_of_values(classes) if classes else "FP64", [-1])]
    if loaded.model.has_predict_proba:
        outputs.append(TensorSpec(PREDICT_PROBA, "FP64", [-1, len(classes) if classes else -1]))
    return outputs


def output_names(loaded: LoadedVersion) -> list[str]:
    return [PREDICT, PREDICT_PROBA] if loaded.model.has_predict_proba else [PREDICT]


def datatype_of_values(values: list[Any]) -> str:
    kind = np.asarray(values).dtype.kind
    return {"b": "BOOL", "i": "INT64", "u": "UINT64", "f": "FP64"}.get(kind, "BYTES")


def columns_to_records(columns: dict[str, Any], feature_names: list[str] | None, what: str) -> list[dict[str, Any]]:
    """Named columns (`{"sepal_length": [5.1, 6.2], ...}`) as one record per row. A scalar column is
    one row. The names must be exactly the recorded feature names; the values are checked later."""
    if not feature_names:
        raise InvalidInput(f"{what}: this model has no recorded feature names; send rows of numbers")
    missing = [name for name in feature_names if name not in columns]
    if missing:
        raise InvalidInput(f"{what}: missing column '{missing[0]}' (expected {feature_names})")
    unknown = [name for name in columns if name not in feature_names]
    if unknown:
        raise InvalidInput(f"{what}: unknown column '{unknown[0]}' (expected {feature_names})")
    lists = {name: value if isinstance(value, list) else [value] for name, value in columns.items()}
    lengths = {name: len(values) for name, values in lists.items()}
    first = feature_names[0]
    uneven = [name for name in feature_names if lengths[name] != lengths[first]]
    if uneven:
        raise InvalidInput(
            f"{what}: column '{uneven[0]}' has {lengths[uneven[0]]} values but '{first}' has {lengths[first]}"
        )
    return [dict(zip(feature_names, row, strict=True)) for row in zip(*(lists[n] for n in feature_names), strict=True)]
