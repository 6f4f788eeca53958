"""`text_input`: a string or a list of strings, for text pipelines (vectorizer + classifier)."""

from __future__ import annotations

from typing import Any

from amms_cli.errors import InvalidInput
from amms_cli.servables.base import Servable, require_non_empty
from amms_cli.servables.tensors import INPUT_NAME, Tensor, TensorSpec, check_tensor


class TextInput(Servable):
    name = "text_input"

    def parse(self, value: Any) -> Any:
        require_non_empty(value)
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            raise InvalidInput(f"inputs: expected a string or a list of strings, got {type(value).__name__}")
        for index, item in enumerate(value):
            if not isinstance(item, str):
                raise InvalidInput(f"inputs[{index}]: expected a string, got {type(item).__name__}")
        return value

    def from_tensor(self, tensor: Tensor) -> Any:
        check_tensor(tensor, self.input_tensor())
        return self.parse(tensor.array.reshape(-1).tolist())  # [N] or [N, 1]: one text per element

    def input_tensor(self) -> TensorSpec:
        return TensorSpec(INPUT_NAME, "BYTES", [-1])

    def concat(self, model_inputs: list[Any]) -> Any:
        return [text for texts in model_inputs for text in texts]

    def schema(self) -> dict[str, Any]:
        return {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
            ]
        }

    def example(self) -> Any:
        return self.info.example if self.info.example is not None else ["an example sentence"]
