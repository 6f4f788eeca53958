"""Named columns mapped onto records by the recorded feature names (TF Serving `inputs`, v2 tensors)."""

from __future__ import annotations

import pytest

from amms_cli.errors import InvalidInput
from amms_cli.servables.tabular import columns_to_records
from amms_cli.servables.tensors import datatype_of_values

NAMES = ["a", "b"]


def test_columns_become_one_record_per_row_in_feature_order() -> None:
    assert columns_to_records({"b": [3, 4], "a": [1, 2]}, NAMES, "inputs") == [{"a": 1, "b": 3}, {"a": 2, "b": 4}]


def test_scalar_columns_are_one_row() -> None:
    assert columns_to_records({"a": 1, "b": 2}, NAMES, "inputs") == [{"a": 1, "b": 2}]


@pytest.mark.parametrize(
    ("columns", "names", "message"),
    [
        ({"a": [1]}, NAMES, r"inputs: missing column 'b' \(expected \['a', 'b'\]\)"),
        ({"a": [1], "b": [2], "c": [3]}, NAMES, "inputs: unknown column 'c'"),
        ({"a": [1, 2], "b": [3]}, NAMES, "inputs: column 'b' has 1 values but 'a' has 2"),
        ({"a": [1]}, None, "no recorded feature names; send rows of numbers"),
    ],
)
def test_columns_that_do_not_match_the_features_are_rejected(
    columns: dict[str, object], names: list[str] | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        columns_to_records(columns, names, "inputs")


@pytest.mark.parametrize(
    ("values", "datatype"), [([0, 1], "INT64"), (["pos"], "BYTES"), ([0.5], "FP64"), ([True], "BOOL")]
)
def test_class_labels_give_the_predict_datatype(values: list[object], datatype: str) -> None:
    assert datatype_of_values(values) == datatype
