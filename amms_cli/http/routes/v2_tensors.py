"""Open Inference Protocol tensors: typed JSON and binary tensor data (the binary tensor data extension)
to numpy arrays and back. Pure functions; every problem with a request tensor is an InvalidInput
naming the tensor and the expected form."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import orjson

from amms_cli.errors import InvalidInput
from amms_cli.servables.tensors import DATATYPES, Tensor, datatype_of, object_array, output_array

HEADER_LENGTH = "inference-header-content-length"

# which JSON number kinds (numpy dtype kinds of the parsed data) each datatype family accepts
_ACCEPTED_KINDS = {"b": "b", "i": "iu", "u": "iu", "f": "iuf"}
_KIND_TEXT = {"b": "true/false", "i": "integers", "u": "non-negative integers", "f": "numbers"}


# ---- requests -------------------------------------------------------------------------------------


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary tensor data that follows it."""
    if header_length is None:
        return body, b""
    if not header_length.strip().isdigit() or not 0 < int(header_length) <= len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length must be a byte count between 1 and the body size "
            f"({len(body)}), got {header_length!r}"
        )
    size = int(header_length)
    return body[:size], body[size:]


def decode_inputs(items: Any, binary: bytes) -> list[Tensor]:
    """The request's `inputs`; tensors with a `binary_data_size` take their bytes from `binary`, in order."""
    if not isinstance(items, list) or not items:
        raise InvalidInput("'inputs' must be a non-empty list of tensors ({name, shape, datatype, data})")
    tensors, offset = [], 0
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"inputs[{index}]: expected a tensor object, got {type(item).__name__}")
        tensor, used = decode_tensor(item, index, binary, offset)
        tensors.append(tensor)
        offset += used
    if offset != len(binary):
        raise InvalidInput(
            f"the body has {len(binary) - offset} bytes of binary data that no input's binary_data_size claims"
        )
    names = [t.name for t in tensors]
    duplicate = next((n for n in names if names.count(n) > 1), None)
    if duplicate is not None:
        raise InvalidInput(f"input '{duplicate}' is given more than once")
    return tensors


def decode_tensor(item: dict[str, Any], index: int, binary: bytes = b"", offset: int = 0) -> tuple[Tensor, int]:
    """One request tensor and how many bytes of `binary` (from `offset`) it used."""
    name, datatype, shape = _header(item, index)
    where = f"input '{name}'"
    parameters = item.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidInput(f"{where}: 'parameters' must be an object")
    if "shared_memory_region" in parameters:
        raise InvalidInput(f"{where}: shared memory is not supported; send the data in the request")
    size = parameters.get("binary_data_size")
    if size is None:
        if "data" not in item:
            raise InvalidInput(f"{where}: no 'data' (and no binary_data_size parameter)")
        return Tensor(name, datatype, shape, from_json(item["data"], datatype, shape, where)), 0
    if "data" in item:
        raise InvalidInput(f"{where}: give either 'data' or the binary_data_size parameter, not both")
    if type(size) is not int or size < 0:
        raise InvalidInput(f"{where}: binary_data_size must be a non-negative integer")
    if offset + size > len(binary):
        raise InvalidInput(
            f"{where}: binary_data_size is {size} but only {len(binary) - offset} bytes of binary data are left"
        )
    chunk = binary[offset : offset + size]
    return Tensor(name, datatype, shape, from_binary(chunk, datatype, shape, where)), size


def _header(item: dict[str, Any], index: int) -> tuple[str, str, list[int]]:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInput(f"inputs[{index}]: 'name' must be a non-empty string")
    datatype = item.get("datatype")
    if datatype not in DATATYPES:
        raise InvalidInput(
            f"input '{name}': datatype {datatype!r} is not supported (use one of {', '.join(DATATYPES)})"
        )
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise InvalidInput(f"input '{name}': 'shape' must be a list of non-negative integers, got {shape!r}")
    return name, datatype, shape


def from_json(data: Any, datatype: str, shape: list[int], where: str) -> np.ndarray:
    """JSON tensor data (flat, or nested in any way that holds prod(shape) elements in row-major order)."""
    count = math.prod(shape)
    if datatype == "BYTES":
        values = _flatten(data)
        bad = next((v for v in values if v is not None and not isinstance(v, str)), None)  # null: missing
        if bad is not None:
            raise InvalidInput(f"{where}: BYTES data must be strings, got {type(bad).__name__} {bad!r}")
        return _shaped(object_array(values), shape, where)
    try:
        array = np.asarray(data)
    except (ValueError, TypeError, OverflowError):
        raise InvalidInput(f"{where}: 'data' is ragged (expected {count} {datatype} values)") from None
    dtype = DATATYPES[datatype]
    if array.dtype.kind == "O" and dtype.kind == "f":
        array = _with_missing(data, array)
    if array.size and array.dtype.kind not in _ACCEPTED_KINDS[dtype.kind]:
        raise InvalidInput(f"{where}: {datatype} data must be {_KIND_TEXT[dtype.kind]}, got {_kind_name(array)}")
    if dtype.kind in "iu" and array.size:
        info = np.iinfo(dtype)
        if array.min() < info.min or array.max() > info.max:
            raise InvalidInput(f"{where}: a value is out of the {datatype} range [{info.min}, {info.max}]")
    return _shaped(array.astype(dtype).reshape(-1), shape, where)


def _with_missing(data: Any, array: np.ndarray) -> np.ndarray:
    """Floating-point data where null stands for a missing value (NaN); anything else is left as it was."""
    values = _flatten(data)
    if not all(value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)) for value in values):
        return array
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    values: list[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            values.append(value)
        else:
            stack.pop()
    return values


def _kind_name(array: np.ndarray) -> str:
    return {"U": "strings", "b": "true/false", "f": "fractional numbers", "O": "mixed or null values"}.get(
        array.dtype.kind, str(array.dtype)
    )


def from_binary(chunk: bytes, datatype: str, shape: list[int], where: str) -> np.ndarray:
    """Binary tensor data: little-endian, row-major; BOOL one byte each; BYTES 4-byte length + bytes each."""
    if datatype == "BYTES":
        return _shaped(_unpack_bytes(chunk, where), shape, where)
    dtype = DATATYPES[datatype]
    expected = math.prod(shape) * dtype.itemsize
    if len(chunk) != expected:
        raise InvalidInput(
            f"{where}: binary_data_size is {len(chunk)} bytes but shape {shape} of {datatype} needs {expected}"
        )
    if datatype == "BOOL":
        return np.frombuffer(chunk, dtype=np.uint8).astype(bool).reshape(shape)
    return np.frombuffer(chunk, dtype=dtype.newbyteorder("<")).astype(dtype).reshape(shape)


def _unpack_bytes(chunk: bytes, where: str) -> np.ndarray:
    values: list[str] = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise InvalidInput(f"{where}: BYTES data ends inside an element's 4-byte length")
        (length,) = struct.unpack_from("<I", chunk, offset)
        offset += 4
        if offset + length > len(chunk):
            raise InvalidInput(f"{where}: BYTES element {len(values)} claims {length} bytes past the end of the data")
        try:
            values.append(chunk[offset : offset + length].decode("utf-8"))
        except UnicodeDecodeError:
            raise InvalidInput(f"{where}: BYTES element {len(values)} is not UTF-8 text") from None
        offset += length
    return object_array(values)


def _shaped(flat: np.ndarray, shape: list[int], where: str) -> np.ndarray:
    count = math.prod(shape)
    if flat.size != count:
        raise InvalidInput(f"{where}: shape {shape} needs {count} values, got {flat.size}")
    return flat.reshape(shape)


# ---- responses ------------------------------------------------------------------------------------


def encode_output(
    name: str, value: Any, binary: bool, parameters: dict[str, Any] | None = None
) -> tuple[dict[str, Any], bytes]:
    """The response tensor object, and its binary data (empty unless `binary`)."""
    array = output_array(value)
    datatype = datatype_of(array)
    tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    params = dict(parameters or {})
    if not binary:
        data = array.reshape(-1)
        tensor["data"] = [str(v) for v in data.tolist()] if datatype == "BYTES" else data.tolist()
        if params:
            tensor["parameters"] = params
        return tensor, b""
    blob = to_binary(array, datatype)
    tensor["parameters"] = params | {"binary_data_size": len(blob)}
    return tensor, blob


def to_binary(array: np.ndarray, datatype: str) -> bytes:
    if datatype == "BYTES":
        parts = []
        for value in array.reshape(-1).tolist():
            raw = str(value).encode("utf-8")
            parts += [struct.pack("<I", len(raw)), raw]
        return b"".join(parts)
    if datatype == "BOOL":
        return array.astype(np.uint8).tobytes()
    return np.ascontiguousarray(array, dtype=DATATYPES[datatype].newbyteorder("<")).tobytes()


def response_body(header: dict[str, Any], blobs: list[bytes]) -> tuple[bytes, int | None]:
    """The body and, when binary data follows the JSON, the JSON's length for Inference-Header-Content-Length."""
    json_part = orjson.dumps(header, option=orjson.OPT_SERIALIZE_NUMPY)
    if not any(blobs):
        return json_part, None
    return json_part + b"".join(blobs), len(json_part)
