"""Servables convert every form the protocols send (JSON rows and records, named columns, typed
tensors) into a model's input, and describe that input; named columns map onto records by the
recorded feature names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from amms_cli.errors import InvalidInput
from amms_cli.project.model_columns import columns_of_frame
from amms_cli.repository.manifest import ColumnInfo, InputInfo
from amms_cli.servables import JsonInputs, NamedColumns, Servable, Tensor, make_servable
from amms_cli.servables.tabular import columns_to_records
from amms_cli.servables.tensors import TensorSpec, datatype_of_values

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


IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def servable(name: str, **info: Any) -> Servable:
    return make_servable(name, InputInfo(**info), "m")


def tensor(array: Any, datatype: str = "FP64", name: str = "input") -> Tensor:
    values = np.asarray(array, dtype=object if datatype == "BYTES" else None)
    return Tensor(name, datatype, list(values.shape), values)


def test_rows_records_and_columns_of_a_named_tabular_model_give_the_same_frame() -> None:
    tabular = servable("tabular", n_features_in=4, feature_names_in=IRIS)
    rows = tabular.convert(JsonInputs([[5.1, 3.5, 1.4, 0.2]]))
    record = dict(zip(reversed(IRIS), [0.2, 1.4, 3.5, 5.1], strict=True))  # key order is free
    records = tabular.convert(JsonInputs([record]))
    columns = tabular.convert(NamedColumns({name: [value] for name, value in record.items()}))
    typed = tabular.convert(tensor([[5.1, 3.5, 1.4, 0.2]]))
    for same in (records, columns, typed):
        assert np.asarray(same).tolist() == np.asarray(rows).tolist() == [[5.1, 3.5, 1.4, 0.2]]


def test_null_is_a_missing_value_only_for_models_that_fill_them_in() -> None:
    imputing = servable("tabular", n_features_in=3, allows_missing=True)
    rows = imputing.convert(JsonInputs([[1, None, 3], [4, 5, None]]))
    assert np.isnan(rows).tolist() == [[False, True, False], [False, False, True]]
    with pytest.raises(InvalidInput, match="NaN or infinite values are not accepted"):
        imputing.convert(JsonInputs([[1, float("inf"), 3]]))
    with pytest.raises(InvalidInput, match="expected numbers, got mixed or nested values"):
        servable("tabular", n_features_in=3).convert(JsonInputs([[1, None, 3]]))


def test_an_unnamed_tabular_model_takes_one_named_tensor_of_rows() -> None:
    tabular = servable("tabular", n_features_in=2)
    assert tabular.convert(NamedColumns({"input": [[1, 2]]})).tolist() == [[1.0, 2.0]]
    with pytest.raises(InvalidInput, match="model 'm' takes one input tensor, got 2 named ones"):
        tabular.convert(NamedColumns({"a": [1], "b": [2]}))


@pytest.mark.parametrize(
    ("sent", "message"),
    [
        (tensor([[1.0, 2.0, 3.0]]), r"expected FP64 of shape \[-1, 4\], got shape \[1, 3\]"),
        (tensor([["a", "b", "c", "d"]], "BYTES"), r"expected FP64 of shape \[-1, 4\], got BYTES"),
        (JsonInputs([[1, 2, 3]]), "expected 4 features per row, got 3"),
        (JsonInputs([["a", "b", "c", "d"]]), "expected numbers, got strings"),
        (JsonInputs([[1, 2, 3, float("nan")]]), "NaN or infinite values are not accepted"),
    ],
)
def test_tabular_input_of_the_wrong_shape_or_kind_is_refused(sent: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        servable("tabular", n_features_in=4).convert(sent)


def test_text_comes_as_a_string_a_list_or_a_bytes_tensor_of_n_or_n_by_1() -> None:
    text = servable("text_input")
    assert text.convert(JsonInputs("hello")) == ["hello"]
    assert text.convert(tensor(["a", "b"], "BYTES")) == ["a", "b"]
    assert text.convert(tensor([["a"], ["b"]], "BYTES")) == ["a", "b"]
    with pytest.raises(InvalidInput, match="expected BYTES of shape"):
        text.convert(tensor([1.0]))


def test_a_custom_model_gets_any_json_unchanged() -> None:
    custom = servable("custom")
    assert custom.convert(JsonInputs({"anything": [1, "two"]})) == {"anything": [1, "two"]}
    assert custom.convert(NamedColumns({"a": [1], "b": [2]})) == {"a": [1], "b": [2]}
    assert custom.convert(tensor([[1, 2, 3]], "INT64")) == [[1, 2, 3]]


def test_an_ndarray_instance_may_leave_out_the_batch_dimension() -> None:
    images = servable("ndarray", shape=[None, 2, 2], dtype="float32")
    batch = images.convert(JsonInputs([[1, 2], [3, 4]]))
    assert batch.shape == (1, 2, 2) and batch.dtype == np.float32


@pytest.mark.parametrize(
    ("kind", "info", "described"),
    [
        ("tabular", {"n_features_in": 4}, TensorSpec("input", "FP64", [-1, 4])),
        ("text_input", {}, TensorSpec("input", "BYTES", [-1])),
        ("ndarray", {"shape": [None, 28, 28], "dtype": "float32"}, TensorSpec("input", "FP32", [-1, 28, 28])),
        ("custom", {"example": [[1, 2, 3]]}, TensorSpec("input", "INT64", [-1, 3])),
        ("custom", {"example": {"a": 1}}, None),
    ],
)
def test_each_servable_describes_its_input_tensor(
    kind: str, info: dict[str, Any], described: TensorSpec | None
) -> None:
    assert servable(kind, **info).input_tensor() == described


def test_a_named_tabular_model_describes_one_tensor_per_column() -> None:
    assert servable("tabular", n_features_in=4, feature_names_in=IRIS).column_tensors() == [
        TensorSpec(name, "FP64", [-1]) for name in IRIS
    ]
    assert servable("tabular", n_features_in=4).column_tensors() == []


# ---- the dataframe servable: typed columns ----------------------------------------------------------


def frame_servable(*columns: ColumnInfo) -> Servable:
    return make_servable("dataframe", InputInfo(columns=list(columns)), "m")


def table(servable: Servable, inputs: Any) -> Any:
    """The DataFrame the model gets: checked when the request is converted, built by prepare."""
    return servable.prepare(servable.convert(inputs))


def test_columns_are_learnt_from_a_dataframe_with_its_exact_dtypes() -> None:
    frame = pd.DataFrame(
        {
            "when": pd.to_datetime(["2026-01-02", None]),
            "size": pd.Categorical(["s", "m"], categories=["s", "m", "l"]),
            "count": pd.array([1, None], dtype="Int64"),
            "note": pd.Series(["a", None], dtype=object),
        }
    )
    learnt = {column.name: column for column in columns_of_frame(frame)}
    assert (learnt["when"].type, learnt["when"].nullable) == ("datetime", True)
    assert (learnt["size"].type, learnt["size"].levels, learnt["size"].dtype) == (
        "category",
        ["s", "m", "l"],
        "category",
    )
    assert (learnt["count"].type, learnt["count"].nullable) == ("int", True)
    assert learnt["note"].type == "string"


def test_dates_categories_and_nullable_integers_become_the_recorded_dtypes() -> None:
    servable = frame_servable(
        ColumnInfo(name="when", type="datetime", nullable=True),
        ColumnInfo(name="size", type="category", dtype="category", levels=["s", "m", "l"]),
        ColumnInfo(name="count", type="int", nullable=True),
    )
    frame = table(servable, JsonInputs({"when": ["2026-01-02T10:00:00", None], "size": ["m", "l"], "count": [3, None]}))
    assert str(frame["when"].dtype).startswith("datetime64") and frame["when"].isna().tolist() == [False, True]
    assert frame["size"].cat.categories.tolist() == ["s", "m", "l"] and frame["size"].tolist() == ["m", "l"]
    assert frame["count"].dtype == np.float64 and np.isnan(frame["count"].iloc[1])  # missing ints are NaN floats


def test_an_open_category_passes_unknown_values_to_the_model() -> None:
    servable = frame_servable(ColumnInfo(name="city", type="category", levels=["lyon", "paris"], closed=False))
    assert table(servable, JsonInputs([{"city": "rome"}]))["city"].tolist() == ["rome"]
    with pytest.raises(
        InvalidInput, match="column 'city' row 0: expected one of \\['lyon', 'paris'\\], got the number 3"
    ):
        table(servable, JsonInputs([{"city": 3}]))


def test_a_column_of_unknown_type_takes_any_single_value_but_not_a_nested_one() -> None:
    servable = frame_servable(ColumnInfo(name="x", type="any"))
    assert table(servable, JsonInputs([{"x": 1}, {"x": "a"}]))["x"].tolist() == [1, "a"]
    with pytest.raises(InvalidInput, match="column 'x' row 0: expected a single value, got a list"):
        table(servable, JsonInputs([{"x": [1, 2]}]))


def test_nan_from_a_tensor_is_a_missing_value() -> None:
    servable = frame_servable(ColumnInfo(name="income", type="float", nullable=True))
    frame = table(servable, tensor([1.5, np.nan], name="income"))
    assert np.isnan(frame["income"]).tolist() == [False, True]
    strict = frame_servable(ColumnInfo(name="income", type="float"))
    with pytest.raises(InvalidInput, match="column 'income' row 1: null is not accepted"):
        table(strict, tensor([1.5, np.nan], name="income"))


def test_a_date_that_is_not_one_is_a_clear_error() -> None:
    servable = frame_servable(ColumnInfo(name="when", type="datetime"))
    with pytest.raises(InvalidInput, match="column 'when'"):
        table(servable, JsonInputs([{"when": "yesterday"}]))
