"""`custom`: the request's `inputs` JSON goes unchanged to a custom model's own `predict`."""

from __future__ import annotations

from typing import Any

from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.base import Servable, require_non_empty


class Custom(Servable):
    name = "custom"
    batchable = False

    def parse(self, inputs: Any, info: InputInfo) -> Any:
        require_non_empty(inputs)
        return inputs

    def count(self, model_input: Any) -> int:
        return 1

    def schema(self, info: InputInfo) -> dict[str, Any]:
        return {"description": "any JSON value; the model's own predict() interprets it"}
