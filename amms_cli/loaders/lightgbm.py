"""LightGBM's own text model files (`booster.save_model("model.txt")`), the extra
`amms_cli[lightgbm]`. Loading runs no Python code from the file; the objective saved in it tells a
classifier from a regressor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.errors import ModelLoadError
from amms_cli.loaders.base import (
    LoaderFacts,
    LoadOptions,
    Model,
    ScoreModel,
    head_of,
    missing_extra,
    save_model_writer,
)

MAGIC = b"tree\nversion=v"
END_OF_TREES = b"\nend of trees"  # LightGBM's parser aborts the whole process on a file cut before this


class LightGBMModel(ScoreModel):
    def __init__(self, path: Path) -> None:
        try:
            import lightgbm
        except ImportError:
            raise missing_extra("lightgbm") from None
        if END_OF_TREES not in path.read_bytes():
            raise ModelLoadError(
                f"{path.name} is not a complete LightGBM model (it has no 'end of trees' line)",
                hint="save it again with booster.save_model(path); the file may have been cut short",
            )
        self.obj = lightgbm.Booster(model_file=str(path))
        dump = self.obj.dump_model(num_iteration=0)
        objective = str(dump.get("objective", "")).split(" ")[0]
        n_classes = int(dump.get("num_class") or 1)
        kind = {"binary": "binary", "multiclass": "multiclass", "multiclassova": "multiclass"}.get(objective)
        super().__init__("lightgbm", kind or "regression", max(n_classes, 2))

    def scores(self, inputs: Any) -> np.ndarray:
        return np.asarray(self.obj.predict(inputs))

    def close(self) -> None:
        del self.obj


def load(path: Path, options: LoadOptions) -> Model:
    return LightGBMModel(path)


def _is_lightgbm(path: Path) -> bool:
    return head_of(path, len(MAGIC)) == MAGIC


def _modules(path: Path) -> set[str]:
    return {"lightgbm"}


LIGHTGBM = LoaderFacts(
    name="lightgbm",
    description="LightGBM save_model text files (.txt); pip install 'amms_cli[lightgbm]'",
    load=load,
    suffixes=(".txt",),
    detect=_is_lightgbm,
    runs_code=False,
    modules_named=_modules,
    writer=save_model_writer("lightgbm", "Booster", ".txt"),
)
