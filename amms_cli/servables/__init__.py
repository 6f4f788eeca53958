"""Servables, one module per input kind, looked up by `servable_name`; `make_servable` builds one for
a model version from what its manifest recorded of the input."""

from __future__ import annotations

from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.base import JsonInputs, NamedColumns, RequestInputs, Servable
from amms_cli.servables.custom import Custom
from amms_cli.servables.dataframe import DataFrame
from amms_cli.servables.ndarray import NdArray
from amms_cli.servables.tabular import Tabular
from amms_cli.servables.tensors import Tensor, TensorSpec
from amms_cli.servables.text_input import TextInput

SERVABLES: dict[str, type[Servable]] = {s.name: s for s in (TextInput, Tabular, NdArray, Custom, DataFrame)}
SERVABLE_NAMES = tuple(SERVABLES)


def make_servable(name: str, info: InputInfo, model_name: str) -> Servable:
    return SERVABLES[name](info, model_name)


__all__ = [
    "SERVABLES",
    "SERVABLE_NAMES",
    "JsonInputs",
    "NamedColumns",
    "RequestInputs",
    "Servable",
    "Tensor",
    "TensorSpec",
    "make_servable",
]
