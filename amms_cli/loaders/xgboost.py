"""XGBoost's own model files: `save_model("m.json")` (JSON) or `"m.ubj"` (Universal Binary JSON), the
extra `amms_cli[xgboost]`. Loading runs no Python code from the file, and needs no scikit-learn: the
booster predicts, and its saved objective tells a classifier (probabilities, class ids) from a
regressor."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.loaders.base import (
    LoaderFacts,
    LoadOptions,
    Model,
    ScoreModel,
    head_of,
    missing_extra,
    save_model_writer,
)

UBJSON_MARKERS = b"iUIlL"  # the length marker of the first key in a UBJSON object


class XGBoostModel(ScoreModel):
    def __init__(self, path: Path) -> None:
        try:
            import xgboost
        except ImportError:
            raise missing_extra("xgboost") from None
        self._xgboost = xgboost
        self.obj = xgboost.Booster(model_file=str(path))
        learner = json.loads(self.obj.save_config())["learner"]
        objective = learner["objective"]["name"]
        n_classes = int(learner["learner_model_param"].get("num_class") or 0)
        if objective.startswith("binary:"):
            kind = "binary"
        elif objective.startswith("multi:softprob"):
            kind = "multiclass"
        else:  # regression, counts, ranking, and multi:softmax (class ids without probabilities)
            kind = "regression"
        super().__init__("xgboost", kind, max(n_classes, 2))

    def scores(self, inputs: Any) -> np.ndarray:
        named = hasattr(inputs, "columns")  # a DataFrame names its columns itself
        matrix = self._xgboost.DMatrix(inputs, feature_names=None if named else self.obj.feature_names)
        return np.asarray(self.obj.predict(matrix))

    def close(self) -> None:
        del self.obj


def load(path: Path, options: LoadOptions) -> Model:
    return XGBoostModel(path)


def _is_xgboost(path: Path) -> bool:
    head = head_of(path, 32)
    if head.lstrip().startswith(b'{"learner"'):  # JSON, as save_model writes it
        return True
    return head[:1] == b"{" and head[1:2] in [bytes([m]) for m in UBJSON_MARKERS] and b"learner" in head


def _modules(path: Path) -> set[str]:
    return {"xgboost"}


XGBOOST = LoaderFacts(
    name="xgboost",
    description="XGBoost save_model files (.json, .ubj); pip install 'amms_cli[xgboost]'",
    load=load,
    suffixes=(".json", ".ubj"),
    detect=_is_xgboost,
    runs_code=False,
    modules_named=_modules,
    writer=save_model_writer("xgboost", "Booster", ".json"),
)
