"""`text_input`: a string or a list of strings, for text pipelines (vectorizer + classifier)."""

from __future__ import annotations

from typing import Any

from amms_cli.errors import InvalidInput
from amms_cli.repository.manifest import InputInfo
from amms_cli.servables.base import Servable, require_non_empty


class TextInput(Servable):
    name = "text_input"

    def parse(self, inputs: Any, info: InputInfo) -> Any:
        require_non_empty(inputs)
        if isinstance(inputs, str):
            return [inputs]
        if not isinstance(inputs, list):
            raise InvalidInput(f"inputs: expected a string or a list of strings, got {type(inputs).__name__}")
        for index, item in enumerate(inputs):
            if not isinstance(item, str):
                raise InvalidInput(f"inputs[{index}]: expected a string, got {type(item).__name__}")
        return inputs

    def concat(self, model_inputs: list[Any]) -> Any:
        return [text for texts in model_inputs for text in texts]

    def schema(self, info: InputInfo) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        }

    def example(self, info: InputInfo) -> Any:
        return info.example if info.example is not None else ["an example sentence"]
