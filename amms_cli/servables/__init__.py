"""Servables, one module per input adapter, looked up by `servable_name`."""

from __future__ import annotations

from amms_cli.servables.base import Servable, jsonable, split_rows
from amms_cli.servables.custom import Custom
from amms_cli.servables.ndarray import NdArray
from amms_cli.servables.tabular import Tabular
from amms_cli.servables.text_input import TextInput

SERVABLES: dict[str, Servable] = {s.name: s for s in (TextInput(), Tabular(), NdArray(), Custom())}
SERVABLE_NAMES = tuple(SERVABLES)


def get_servable(name: str) -> Servable:
    return SERVABLES[name]


__all__ = ["SERVABLES", "SERVABLE_NAMES", "Servable", "get_servable", "jsonable", "split_rows"]
