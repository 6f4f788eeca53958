"""Keras 3 models (`model.save("m.keras")`), run on the PyTorch backend so no TensorFlow is needed: the
extra `amms_cli[keras]`. Loaded with Keras' safe_mode on, which refuses to deserialize lambdas: no
code from the file runs."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, Writer, instance_of, missing_extra, with_suffix

BACKEND = "torch"
ENTRIES = {"config.json", "metadata.json"}


class KerasModel(Model):
    framework = "keras"

    def __init__(self, model: Any, keras: Any) -> None:
        self.obj = model
        self._keras = keras
        shape = list(model.inputs[0].shape) if getattr(model, "inputs", None) else None
        self.input_shape = [dim if isinstance(dim, int) else None for dim in shape] if shape else None
        self.input_dtype = np.float32 if shape else None

    def predict(self, inputs: Any) -> Any:
        array = np.asarray(inputs, dtype=np.float32)
        return self._keras.ops.convert_to_numpy(self.obj(array, training=False))

    @property
    def row_independent(self) -> bool:
        return True

    def close(self) -> None:
        self.obj = None


def load(path: Path, options: LoadOptions) -> Model:
    os.environ.setdefault("KERAS_BACKEND", BACKEND)  # read when keras is first imported
    try:
        import keras
    except ImportError:
        raise missing_extra("keras") from None
    return KerasModel(keras.saving.load_model(str(path), safe_mode=True), keras)


def _is_keras(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if not names >= ENTRIES:
            return False
        metadata = json.loads(archive.read("metadata.json"))
    return isinstance(metadata, dict) and "keras_version" in metadata


def _modules(path: Path) -> set[str]:
    return {"keras", BACKEND}


def _write(obj: Any, target: Path) -> Path:
    path = with_suffix(target, ".keras")
    obj.save(str(path))
    return path


KERAS = LoaderFacts(
    name="keras",
    description="Keras 3 .keras files, on the PyTorch backend; pip install 'amms_cli[keras]'",
    load=load,
    suffixes=(".keras",),
    detect=_is_keras,
    runs_code=False,  # safe_mode
    modules_named=_modules,
    writer=Writer(lambda obj: instance_of(obj, "keras", "Model"), _write),
)
