"""The servable interface: how a model takes its input.

A servable is made for one model version from what its manifest recorded of the input (`InputInfo`).
It converts each form a protocol sends into the model's input, and describes that input for the docs
(a JSON schema and an example) and for the protocols' metadata (its tensors and columns):

    JsonInputs    the JSON a client sent as the input: rows, records, one row, a string, ...
                  (native `inputs`, TF Serving `instances` and non-object `inputs`)
    NamedColumns  name -> column (TF Serving columnar `inputs`, v2 one tensor per column)
    Tensor        one typed v2 tensor
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.tensors import Tensor, TensorSpec, check_tensor


@dataclass(frozen=True, slots=True)
class JsonInputs:
    value: Any
    body: bytes | None = None  # the raw request, for what parsing hides (a key given twice)


@dataclass(frozen=True, slots=True)
class NamedColumns:
    columns: dict[str, Any]
    body: bytes | None = None  # as in JsonInputs, when the columns came as JSON


RequestInputs = JsonInputs | NamedColumns | Tensor


class Servable:
    """Checks and converts a request's input for one model version, and describes it.

    `batchable` servables produce model inputs that `concat` can join row-wise, so the batcher can
    merge requests and split the outputs back by `count`.
    """

    name: ClassVar[str] = ""
    batchable: bool = True  # inputs can be merged by `concat` (a servable may decide per model)
    requirements: ClassVar[tuple[str, ...]] = ()  # distributions the model input needs (pinned in images)

    def __init__(self, info: InputInfo, model_name: str) -> None:
        self.info = info
        self.model_name = model_name

    def convert(self, inputs: RequestInputs) -> Any:
        """The checked input of one request, for any form a protocol sends (`prepare` finishes it)."""
        if isinstance(inputs, JsonInputs):
            return self.parse(inputs.value)
        if isinstance(inputs, NamedColumns):
            return self.from_columns(inputs.columns)
        return self.from_tensor(inputs)

    def parse(self, value: Any) -> Any:
        """The model input for the JSON a client sent."""
        raise NotImplementedError

    def from_columns(self, columns: dict[str, Any]) -> Any:
        """Named inputs: a servable without named columns takes exactly one, its input tensor."""
        if len(columns) != 1:
            raise InvalidInput(
                f"inputs: model '{self.model_name}' takes one input tensor, got {len(columns)} named ones"
                " (columns by feature name need a tabular model with recorded feature names)"
            )
        return self.parse(next(iter(columns.values())))

    def from_tensor(self, tensor: Tensor) -> Any:
        spec = self.input_tensor()
        if spec is not None:
            check_tensor(tensor, spec)
        array = tensor.array
        return self.parse(array.tolist() if tensor.datatype == "BYTES" or array.ndim == 0 else array)

    def input_tensor(self) -> TensorSpec | None:
        """The one tensor this input is, when it can be described as one."""
        return None

    def column_tensors(self) -> list[TensorSpec]:
        """One tensor per named column, for servables that take named columns (else none)."""
        return []

    def schema(self) -> dict[str, Any]:
        """The JSON schema of the native `inputs` field."""
        return {}

    def example(self) -> Any:
        """A request example for the docs and smoke check: the recorded one, or a synthetic one."""
        return self.info.example

    def prepare(self, checked: Any) -> Any:
        """What the model is called with, from the checked input of one request or of a merged batch;
        runs where the model predicts (off the event loop), once per batch."""
        return checked

    def model_input(self, value: Any) -> Any:
        """The model's input for a JSON value (an example), checked and prepared."""
        return self.prepare(self.parse(value))

    def count(self, model_input: Any) -> int:
        return len(model_input)

    def concat(self, model_inputs: list[Any]) -> Any:
        return np.concatenate(model_inputs)


MAX_DIMENSIONS = 64  # numpy's limit


def numeric_array(inputs: Any, what: str = "inputs", missing: bool = False) -> np.ndarray:
    """`inputs` as a float64 array, rejecting strings, ragged rows and non-finite values; with
    `missing`, null is a missing value (NaN), for models that impute or accept NaN."""
    try:
        array = np.asarray(inputs)
    except (ValueError, TypeError) as exc:
        if "maximum number of dimension" in str(exc):
            raise InvalidInput(f"{what}: nested too deeply (at most {MAX_DIMENSIONS} dimensions)") from None
        raise InvalidInput(f"{what}: rows have different lengths (expected a rectangular array)") from None
    if missing and array.dtype.kind == "O" and array.size:
        array = _with_nan(inputs, array)
    if array.dtype.kind not in "biuf":
        if array.dtype.kind in "OU" and array.size and _has_ragged(inputs):
            raise InvalidInput(f"{what}: rows have different lengths (expected a rectangular array)")
        raise InvalidInput(f"{what}: expected numbers, got {_kind_of(array)}")
    array = array.astype(np.float64, copy=False)
    finite = np.isfinite(array)
    if not finite.all() and not (missing and np.isnan(array[~finite]).all()):
        raise InvalidInput(f"{what}: NaN or infinite values are not accepted")
    return array


def _with_nan(inputs: Any, array: np.ndarray) -> np.ndarray:
    """Numbers and nulls as floats with NaN; anything else (strings, booleans) stays as it was."""
    if any(isinstance(value, (str, bool, list, dict)) for value in array.reshape(-1).tolist()):
        return array
    try:
        return np.array(inputs, dtype=np.float64)
    except (ValueError, TypeError):
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
