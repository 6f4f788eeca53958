"""Open Inference Protocol tensors <-> numpy, JSON and binary, checked against tritonclient's own
encoders and decoders (tritonclient.utils) so both sides of the wire agree."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tritonclient.utils import deserialize_bytes_tensor, serialize_byte_tensor

from amms_cli.errors import InvalidInput
from amms_cli.http.routes.v2_tensors import (
    decode_inputs,
    decode_tensor,
    encode_output,
    from_binary,
    from_json,
    response_body,
    split_body,
)
from amms_cli.servables.tensors import output_array


def tensor(name: str = "x", shape: list[int] | None = None, datatype: str = "FP64", **fields: Any) -> dict[str, Any]:
    return {"name": name, "shape": [2, 2] if shape is None else shape, "datatype": datatype, **fields}


def binary_input(array: np.ndarray, datatype: str, name: str = "x") -> tuple[dict[str, Any], bytes]:
    raw = serialize_byte_tensor(array).item() if datatype == "BYTES" else array.tobytes()
    return tensor(name, list(array.shape), datatype, parameters={"binary_data_size": len(raw)}), raw


# ---- the body -------------------------------------------------------------------------------------


def test_without_the_header_the_whole_body_is_json() -> None:
    assert split_body(b'{"inputs": []}', None) == (b'{"inputs": []}', b"")


def test_the_header_length_splits_json_from_binary_data() -> None:
    assert split_body(b"{}\x01\x02", "2") == (b"{}", b"\x01\x02")


@pytest.mark.parametrize("value", ["0", "5", "-1", "two", ""])
def test_a_header_length_outside_the_body_is_rejected(value: str) -> None:
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length"):
        split_body(b"{}\x01", value)


# ---- JSON tensor data -----------------------------------------------------------------------------


def test_flat_and_nested_data_give_the_same_array() -> None:
    flat = from_json([1, 2, 3, 4], "FP64", [2, 2], "input 'x'")
    nested = from_json([[1, 2], [3, 4]], "FP64", [2, 2], "input 'x'")
    assert flat.dtype == np.float64 and flat.tolist() == nested.tolist() == [[1.0, 2.0], [3.0, 4.0]]


@pytest.mark.parametrize(
    ("data", "datatype", "shape", "message"),
    [
        ([1, 2, 3], "FP64", [2, 2], r"input 'x': shape \[2, 2\] needs 4 values, got 3"),
        ([[1, 2], [3]], "FP64", [3], "ragged"),
        ([1.5, 2], "INT64", [2], "INT64 data must be integers, got fractional numbers"),
        (["a", "b"], "FP32", [2], "FP32 data must be numbers, got strings"),
        ([1, 0], "BOOL", [2], "BOOL data must be true/false"),
        ([1, None], "INT64", [2], "mixed or null values"),
        ([1, "a", None], "FP64", [3], "mixed or null values"),
        ([300], "UINT8", [1], r"out of the UINT8 range \[0, 255\]"),
        (["a", 1], "BYTES", [2], "BYTES data must be strings, got int 1"),
    ],
)
def test_json_data_of_the_wrong_form_names_the_tensor(data: Any, datatype: str, shape: list[int], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        from_json(data, datatype, shape, "input 'x'")


def test_null_is_a_missing_value_in_floating_point_and_bytes_data() -> None:
    assert np.isnan(from_json([1.5, None], "FP64", [2], "input 'x'")).tolist() == [False, True]
    assert from_json(["paris", None], "BYTES", [2], "input 'x'").tolist() == ["paris", None]


def test_bytes_data_becomes_strings_in_the_given_shape() -> None:
    array = from_json([["ab", "c"], ["d", "ef"]], "BYTES", [2, 2], "input 'x'")
    assert array.dtype == object and array.tolist() == [["ab", "c"], ["d", "ef"]]


def test_integers_are_accepted_for_floating_point_tensors() -> None:
    assert from_json([1, 2], "FP32", [2], "input 'x'").dtype == np.float32


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ({"shape": [1], "datatype": "FP64", "data": [1]}, r"inputs\[0\]: 'name' must be a non-empty string"),
        (tensor(datatype="BF16", data=[1, 2, 3, 4]), "datatype 'BF16' is not supported"),
        (tensor(shape=[-1, 2], data=[1, 2]), "'shape' must be a list of non-negative integers"),
        (tensor(shape=[True], data=[1]), "'shape' must be a list of non-negative integers"),
        (tensor(), "no 'data'"),
        (tensor(data=[1, 2, 3, 4], parameters={"binary_data_size": 32}), "either 'data' or the binary_data_size"),
        (tensor(data=[1, 2, 3, 4], parameters={"shared_memory_region": "r"}), "shared memory is not supported"),
        (tensor(data=[1, 2, 3, 4], parameters=[1]), "'parameters' must be an object"),
    ],
)
def test_malformed_tensor_objects_are_rejected(item: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        decode_tensor(item, 0)


def test_inputs_must_be_a_non_empty_list_of_objects() -> None:
    for inputs in ([], {}, None, "x"):
        with pytest.raises(InvalidInput, match="'inputs' must be a non-empty list"):
            decode_inputs(inputs, b"")
    with pytest.raises(InvalidInput, match=r"inputs\[0\]: expected a tensor object, got int"):
        decode_inputs([1], b"")


def test_an_input_name_may_appear_once() -> None:
    with pytest.raises(InvalidInput, match="input 'x' is given more than once"):
        decode_inputs([tensor(data=[1, 2, 3, 4]), tensor(data=[1, 2, 3, 4])], b"")


# ---- binary tensor data ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "datatype"),
    [
        (np.array([[1.5, -2.0], [3.25, 4.0]], dtype=np.float32), "FP32"),
        (np.array([[1.5, -2.0], [3.25, 4.0]], dtype=np.float64), "FP64"),
        (np.array([1, -2, 3], dtype=np.int64), "INT64"),
        (np.array([7, 8], dtype=np.uint16), "UINT16"),
        (np.array([True, False, True]), "BOOL"),
    ],
)
def test_binary_inputs_as_tritonclient_encodes_them(array: np.ndarray, datatype: str) -> None:
    item, raw = binary_input(array, datatype)
    (decoded,) = decode_inputs([item], raw)
    assert decoded.array.dtype == array.dtype and decoded.array.tolist() == array.tolist()


def test_binary_bytes_inputs_become_strings() -> None:
    texts = np.array([["a great movie"], ["dreadful ☹"]], dtype=object)
    item, raw = binary_input(texts, "BYTES")
    (decoded,) = decode_inputs([item], raw)
    assert decoded.shape == [2, 1] and decoded.array.tolist() == [["a great movie"], ["dreadful ☹"]]


def test_several_binary_inputs_take_their_bytes_in_order() -> None:
    first, first_raw = binary_input(np.array([1.0, 2.0]), "FP64", "a")
    second, second_raw = binary_input(np.array([3, 4], dtype=np.int32), "INT32", "b")
    a, b = decode_inputs([first, second], first_raw + second_raw)
    assert (a.array.tolist(), b.array.tolist()) == ([1.0, 2.0], [3, 4])


def test_json_and_binary_inputs_mix() -> None:
    item, raw = binary_input(np.array([1.0, 2.0]), "FP64", "a")
    a, b = decode_inputs([tensor("b", [1], "INT64", data=[5]), item], raw)
    assert (a.array.tolist(), b.array.tolist()) == ([5], [1.0, 2.0])


@pytest.mark.parametrize(
    ("chunk", "datatype", "shape", "message"),
    [
        (b"\x00" * 12, "FP64", [2], "binary_data_size is 12 bytes but shape \\[2\\] of FP64 needs 16"),
        (b"\x05\x00\x00\x00ab", "BYTES", [1], "BYTES element 0 claims 5 bytes past the end"),
        (b"\x01\x00", "BYTES", [1], "BYTES data ends inside an element's 4-byte length"),
        (struct.pack("<I", 2) + b"\xff\xfe", "BYTES", [1], "BYTES element 0 is not UTF-8 text"),
        (struct.pack("<I", 1) + b"a", "BYTES", [2], r"shape \[2\] needs 2 values, got 1"),
    ],
)
def test_malformed_binary_data_names_the_tensor(chunk: bytes, datatype: str, shape: list[int], message: str) -> None:
    with pytest.raises(InvalidInput, match=f"input 'x': {message}"):
        from_binary(chunk, datatype, shape, "input 'x'")


def test_binary_sizes_must_account_for_every_byte() -> None:
    item, raw = binary_input(np.array([1.0, 2.0]), "FP64")
    with pytest.raises(InvalidInput, match="4 bytes of binary data that no input's binary_data_size claims"):
        decode_inputs([item], raw + b"more")
    with pytest.raises(InvalidInput, match="binary_data_size is 16 but only 8 bytes"):
        decode_inputs([item], raw[:8])
    with pytest.raises(InvalidInput, match="binary_data_size must be a non-negative integer"):
        decode_inputs([{**item, "parameters": {"binary_data_size": "16"}}], raw)


# ---- outputs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "datatype", "shape", "data"),
    [
        ([0, 2, 1], "INT64", [3], [0, 2, 1]),
        ([[0.25, 0.75]], "FP64", [1, 2], [0.25, 0.75]),
        (["pos", "neg"], "BYTES", [2], ["pos", "neg"]),
        ([True, False], "BOOL", [2], [True, False]),
        (7.5, "FP64", [1], [7.5]),
        ([[1, 2], [3]], "BYTES", [1], ["[[1,2],[3]]"]),
        ([{"a": 1}, None], "BYTES", [2], ['{"a":1}', "null"]),
    ],
)
def test_json_outputs_take_their_datatype_from_the_values(
    value: Any, datatype: str, shape: list[int], data: list[Any]
) -> None:
    output, blob = encode_output("predict", value, binary=False)
    assert output == {"name": "predict", "datatype": datatype, "shape": shape, "data": data}
    assert blob == b""


def test_binary_outputs_decode_with_tritonclient() -> None:
    numbers, numbers_blob = encode_output("predict", [[0.25, 0.75], [0.5, 0.5]], binary=True)
    assert numbers["parameters"] == {"binary_data_size": 32}
    assert np.frombuffer(numbers_blob, dtype="<f8").reshape(numbers["shape"]).tolist() == [[0.25, 0.75], [0.5, 0.5]]
    _, texts_blob = encode_output("predict", ["pos", "négatif"], binary=True)
    assert [b.decode() for b in deserialize_bytes_tensor(texts_blob)] == ["pos", "négatif"]
    flags, flags_blob = encode_output("predict", [True, False], binary=True, parameters={"note": "x"})
    assert flags_blob == b"\x01\x00" and flags["parameters"] == {"note": "x", "binary_data_size": 2}


def test_the_response_header_length_is_given_only_with_binary_data() -> None:
    assert response_body({"outputs": []}, [b""]) == (b'{"outputs":[]}', None)
    body, size = response_body({"outputs": []}, [b"\x01", b"\x02\x03"])
    assert size == len(b'{"outputs":[]}') and body[size:] == b"\x01\x02\x03"
    assert orjson.loads(body[:size]) == {"outputs": []}


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1, max_size=50))
def test_numbers_survive_a_binary_round_trip(values: list[float]) -> None:
    output, blob = encode_output("predict", values, binary=True)
    assert from_binary(blob, output["datatype"], output["shape"], "x").tolist() == output_array(values).tolist()


@given(st.lists(st.text(), min_size=1, max_size=20))
def test_strings_survive_a_binary_round_trip(values: list[str]) -> None:
    output, blob = encode_output("predict", values, binary=True)
    assert from_binary(blob, "BYTES", output["shape"], "x").tolist() == values
