"""CatBoost's own model files (`save_model("m.cbm")`), the extra `amms_cli[catboost]`. Loading runs
no Python code from the file; the saved loss function tells a classifier (with its class labels)
from a regressor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amms_cli.loaders.base import (
    LoaderFacts,
    LoadOptions,
    Model,
    ObjectModel,
    head_of,
    missing_extra,
    save_model_writer,
)

MAGIC = b"CBM1"
CLASSIFIER_LOSSES = ("Logloss", "CrossEntropy", "MultiClass", "MultiClassOneVsAll")


def load(path: Path, options: LoadOptions) -> Model:
    try:
        import catboost
    except ImportError:
        raise missing_extra("catboost") from None
    generic = catboost.CatBoost()
    generic.load_model(str(path))
    loss = str(generic.get_all_params().get("loss_function", "")).split(":")[0]
    estimator: Any = catboost.CatBoostClassifier() if loss in CLASSIFIER_LOSSES else catboost.CatBoostRegressor()
    estimator.load_model(str(path))
    return ObjectModel(estimator, "catboost")


def _is_catboost(path: Path) -> bool:
    return head_of(path, len(MAGIC)) == MAGIC


def _modules(path: Path) -> set[str]:
    return {"catboost"}


CATBOOST = LoaderFacts(
    name="catboost",
    description="CatBoost save_model files (.cbm); pip install 'amms_cli[catboost]'",
    load=load,
    suffixes=(".cbm",),
    detect=_is_catboost,
    runs_code=False,
    modules_named=_modules,
    writer=save_model_writer("catboost", "CatBoost", ".cbm"),
)
