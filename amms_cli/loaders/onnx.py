"""ONNX models through onnxruntime (the optional extra `amms_cli[onnx]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.errors import ModelLoadError
from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, Writer, instance_of, no_modules, with_suffix

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(string)": np.object_,
    "tensor(bool)": np.bool_,
}


class OnnxModel(Model):
    framework = "onnx"

    def __init__(self, path: Path) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelLoadError("ONNX models need onnxruntime", hint="pip install 'amms_cli[onnx]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.input_dtype = _DTYPES.get(first.type, np.float32)
        self.input_shape = [d if isinstance(d, int) else None for d in first.shape]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._classes: list[Any] | None = None

    def _run(self, inputs: Any) -> list[Any]:
        array = np.asarray(inputs, dtype=self.input_dtype)
        return self.session.run(None, {self.input_name: array})  # type: ignore[no-any-return]

    def predict(self, inputs: Any) -> Any:
        return self._run(inputs)[0]

    @property
    def row_independent(self) -> bool:
        shape = self.input_shape
        return shape is not None and len(shape) > 0 and shape[0] is None  # a dynamic batch dimension

    @property
    def has_predict_proba(self) -> bool:
        return len(self.output_names) > 1 and "prob" in self.output_names[1].lower()

    def predict_proba(self, inputs: Any) -> Any:
        if not self.has_predict_proba:
            return super().predict_proba(inputs)
        probabilities = self._run(inputs)[1]
        if isinstance(probabilities, list) and probabilities and isinstance(probabilities[0], dict):
            # skl2onnx's ZipMap output: one {label: probability} dict per row
            self._classes = list(probabilities[0].keys())
            return np.asarray([[row[c] for c in self._classes] for row in probabilities])
        return np.asarray(probabilities)

    @property
    def classes(self) -> list[Any] | None:
        return self._classes

    def close(self) -> None:
        del self.session


def load(path: Path, options: LoadOptions) -> Model:
    return OnnxModel(path)


def _is_onnx(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".onnx"


def _write(obj: Any, target: Path) -> Path:
    path = with_suffix(target, ".onnx")
    path.write_bytes(obj.SerializeToString())
    return path


ONNX = LoaderFacts(
    name="onnx",
    description=".onnx files, run by onnxruntime (pip install 'amms_cli[onnx]')",
    load=load,
    suffixes=(".onnx",),
    detect=_is_onnx,
    runs_code=False,
    modules_named=no_modules,
    requirements=("onnxruntime",),
    writer=Writer(lambda obj: instance_of(obj, "onnx", "ModelProto"), _write),
)
