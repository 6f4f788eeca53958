"""The servable interface: one adapter from request JSON to model input, and from outputs to JSON."""

from __future__ import annotations

from typing import Any

import numpy as np

from amms_cli.errors import InvalidInput, PredictionError
from amms_cli.repository.manifest import InputInfo


class Servable:
    """Validates and converts a request's `inputs` for a model, and describes them for the docs.

    `batchable` servables produce model inputs that `concat` can join row-wise, so the batcher can
    merge requests and split the outputs back by `count`.
    """

    name: str = ""
    batchable: bool = True

    def parse(self, inputs: Any, info: InputInfo) -> Any:
        raise NotImplementedError

    def count(self, model_input: Any) -> int:
        return len(model_input)

    def concat(self, model_inputs: list[Any]) -> Any:
        return np.concatenate(model_inputs)

    def schema(self, info: InputInfo) -> dict[str, Any]:
        return {}

    def example(self, info: InputInfo) -> Any:
        """A request example for the docs and smoke check: the recorded one, or a synthetic one."""
        return info.example


MAX_DIMENSIONS = 64  # numpy's limit


def numeric_array(inputs: Any, what: str = "inputs") -> np.ndarray:
    """`inputs` as a float64 array, rejecting strings, ragged rows and non-finite values."""
    try:
        array = np.asarray(inputs)
    except (ValueError, TypeError) as exc:
        if "maximum number of dimension" in str(exc):
            raise InvalidInput(f"{what}: nested too deeply (at most {MAX_DIMENSIONS} dimensions)") from None
        raise InvalidInput(f"{what}: rows have different lengths (expected a rectangular array)") from None
    if array.dtype.kind not in "biuf":
        if array.dtype.kind in "OU" and array.size and _has_ragged(inputs):
            raise InvalidInput(f"{what}: rows have different lengths (expected a rectangular array)")
        raise InvalidInput(f"{what}: expected numbers, got {_kind_of(array)}")
    array = array.astype(np.float64, copy=False)
    if not np.isfinite(array).all():
        raise InvalidInput(f"{what}: NaN or infinite values are not accepted")
    return array


def _has_ragged(inputs: Any) -> bool:
    return isinstance(inputs, list) and len({len(r) if isinstance(r, list) else -1 for r in inputs}) > 1


def _kind_of(array: np.ndarray) -> str:
    if array.dtype.kind == "U":
        return "strings"
    if array.dtype.kind == "O":
        return "mixed or nested values"
    return str(array.dtype)


def require_non_empty(inputs: Any) -> None:
    if inputs is None or (isinstance(inputs, (list, dict, str)) and len(inputs) == 0):
        raise InvalidInput("inputs: empty input (send at least one row)")


def jsonable(value: Any) -> Any:
    """Model output as JSON-ready Python values (numpy arrays and scalars become lists and numbers)."""
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return [jsonable(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise PredictionError(f"model returned a {type(value).__name__}, which cannot be sent as JSON")


def split_rows(outputs: Any, counts: list[int]) -> list[Any]:
    """Split a batched output back into one slice per request."""
    parts, start = [], 0
    for count in counts:
        parts.append(outputs[start : start + count])
        start += count
    return parts
