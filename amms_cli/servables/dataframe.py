"""`dataframe`: a table of named, typed columns, for models fitted on a pandas DataFrame (a
scikit-learn pipeline with a ColumnTransformer, a gradient-boosted model on mixed columns).

A request sends records (`[{"city": "paris", "age": 30, "income": null}]`, keys in any order), one
record, named columns (`{"city": ["paris"], "age": [30]}`) or rows in column order. Every value is
checked against its recorded column (type, missing values, closed categories), and the model gets a
DataFrame with its columns in the fitted order and dtypes."""

from __future__ import annotations

import json
from typing import Any

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import ColumnInfo, InputInfo
from amms_cli.servables.base import JsonInputs, NamedColumns, RequestInputs, Servable, require_non_empty
from amms_cli.servables.columns import Table, build_frame, check_values, describe_value, expected_text
from amms_cli.servables.tabular import require_names
from amms_cli.servables.tensors import Tensor, TensorSpec

MAX_LISTED = 20  # names shown when a request's columns do not match

_SCHEMA_TYPES: dict[str, dict[str, Any]] = {
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "string": {"type": "string"},
    "datetime": {"type": "string", "format": "date-time"},
    "any": {"type": ["string", "number", "boolean"]},
}


class DataFrame(Servable):
    name = "dataframe"
    requirements = ("pandas",)

    def __init__(self, info: InputInfo, model_name: str) -> None:
        super().__init__(info, model_name)
        names = info.feature_names_in or []
        self.columns: list[ColumnInfo] = info.columns or [ColumnInfo(name=name, type="any") for name in names]
        self.names = [column.name for column in self.columns]

    def convert(self, inputs: RequestInputs) -> Any:
        if isinstance(inputs, (JsonInputs, NamedColumns)) and inputs.body is not None:
            refuse_duplicate_keys(inputs.body)
        return super().convert(inputs)

    def parse(self, value: Any) -> Any:
        require_non_empty(value)
        if isinstance(value, dict):
            if value and all(isinstance(cell, list) for cell in value.values()):
                return self.from_columns(value)
            return self._records([value])
        if not isinstance(value, list):
            raise InvalidInput(f"inputs: expected records, named columns or rows, got {describe_value(value)}")
        if all(isinstance(item, dict) for item in value):
            return self._records(value)
        if all(isinstance(item, list) for item in value):
            return self._rows(value)
        raise InvalidInput("inputs: expected a list of records (objects) or of rows (lists), not a mix")

    def from_columns(self, columns: dict[str, Any]) -> Any:
        require_names(columns, self.names, "inputs", "column", MAX_LISTED)
        values = {name: cells if isinstance(cells, list) else [cells] for name, cells in columns.items()}
        lengths = {len(cells) for cells in values.values()}
        if len(lengths) > 1:
            first = self.names[0]
            uneven = next(name for name in self.names if len(values[name]) != len(values[first]))
            raise InvalidInput(
                f"inputs: column '{uneven}' has {len(values[uneven])} values but '{first}' has {len(values[first])}"
            )
        return self._frame(values)

    def from_tensor(self, tensor: Tensor) -> Any:
        """One tensor: a column when named after one (a one-column model), else rows in column order."""
        if tensor.name in self.names:
            return self.from_columns({tensor.name: tensor.array.reshape(-1).tolist()})
        return self.parse(tensor.array.tolist() if tensor.array.ndim > 1 else [tensor.array.tolist()])

    def _records(self, records: list[Any]) -> Any:
        values: dict[str, list[Any]] = {name: [] for name in self.names}
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise InvalidInput(
                    f"inputs[{index}]: expected an object of column values, got {describe_value(record)}"
                )
            require_names(record, self.names, f"inputs[{index}]", "column", MAX_LISTED)
            for name in self.names:
                values[name].append(record[name])
        return self._frame(values)

    def _rows(self, rows: list[list[Any]]) -> Any:
        width = len(self.names)
        for index, row in enumerate(rows):
            if len(row) != width:
                raise InvalidInput(
                    f"inputs[{index}]: expected {width} values (columns {self._listed()}), got {len(row)}"
                )
        return self._frame({name: [row[position] for row in rows] for position, name in enumerate(self.names)})

    def _frame(self, values: dict[str, list[Any]]) -> Table:
        """The checked values; the DataFrame is built by `prepare`, once per batch, where the model runs."""
        for column in self.columns:
            cells = [None if cell != cell else cell for cell in values[column.name]]  # NaN: missing
            check_values(column, cells)
            values[column.name] = cells
        return Table(values, len(values[self.names[0]]) if self.names else 0)

    def prepare(self, checked: Table) -> Any:
        return build_frame(self.columns, checked.values)

    def _listed(self) -> str:
        shown = self.names[:MAX_LISTED]
        return str(shown) if len(self.names) <= MAX_LISTED else f"{shown} and {len(self.names) - MAX_LISTED} more"

    def column_tensors(self) -> list[TensorSpec]:
        return [TensorSpec(column.name, column_datatype(column), [-1]) for column in self.columns]

    def count(self, model_input: Table) -> int:
        return model_input.rows

    def concat(self, model_inputs: list[Table]) -> Table:
        values = {name: [cell for table in model_inputs for cell in table.values[name]] for name in self.names}
        return Table(values, sum(table.rows for table in model_inputs))

    def schema(self) -> dict[str, Any]:
        properties = {column.name: column_schema(column) for column in self.columns}
        record = {
            "type": "object",
            "properties": properties,
            "required": self.names,
            "additionalProperties": False,
        }
        columns = {
            "type": "object",
            "properties": {name: {"type": "array", "items": schema} for name, schema in properties.items()},
            "required": self.names,
            "additionalProperties": False,
            "description": "named columns, all of one length",
        }
        records = {"type": "array", "items": record, "minItems": 1, "description": "records, keys in any order"}
        return {"anyOf": [records, record, columns]}


def column_datatype(column: ColumnInfo) -> str:
    """The Open Inference Protocol datatype of a column's tensor."""
    if column.type == "int":
        return "INT64"
    if column.type == "float":
        return "FP64"
    if column.type == "bool":
        return "BOOL"
    if column.type == "category" and column.levels and not any(isinstance(level, str) for level in column.levels):
        return "INT64" if all(isinstance(level, int) for level in column.levels) else "FP64"
    return "BYTES"


def column_schema(column: ColumnInfo) -> dict[str, Any]:
    """The JSON schema of one column's value, with its type in the description (shown by /docs)."""
    if column.type == "category":
        schema: dict[str, Any] = {"enum": list(column.levels)} if column.closed and column.levels else {}
    else:
        schema = dict(_SCHEMA_TYPES[column.type])
    nullable = ", may be null (missing)" if column.nullable else ""
    description = f"{column.type}{nullable}: {expected_text(column)}"
    if column.nullable:
        return {"anyOf": [schema, {"type": "null"}], "description": description}
    return schema | {"description": description}


def refuse_duplicate_keys(body: bytes) -> None:
    """A key given twice in one object is ambiguous (JSON parsers keep the last one silently)."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(keys) != len(set(keys)):
            duplicate = next(key for key in keys if keys.count(key) > 1)
            raise InvalidInput(f"the key '{duplicate}' is given twice in one object")
        return dict(items)

    try:
        json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        return  # not JSON the stdlib reads (the request parsed already): nothing more to learn
