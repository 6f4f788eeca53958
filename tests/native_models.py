"""Tiny models saved in each framework's own recommended format, made here (no downloads): XGBoost
JSON and UBJSON, LightGBM text, CatBoost .cbm, skops, TorchScript, torch.export, Keras 3, a Hugging
Face save_pretrained folder (a tiny BERT with a tokenizer trained on the spot) and an MLflow folder.
Each comes with the inputs to send and the framework's own predictions for them."""

from __future__ import annotations

import operator
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from factories import TEXTS

ROWS = [[0.9, 0.1, 0.4, 0.3], [0.2, 0.8, 0.6, 0.7], [0.5, 0.5, 0.1, 0.9]]
TRUST = "_operator.neg"  # the type the skops pipeline holds beyond skops' trusted defaults


@dataclass(frozen=True)
class Saved:
    """A model file (or folder) and what the framework itself predicts for `inputs`."""

    path: Path
    inputs: Any  # the native `inputs` JSON
    predict: list[Any]
    proba: list[list[float]] | None = None
    options: tuple[str, ...] = ()  # add-model options it needs


def training() -> tuple[np.ndarray, np.ndarray]:
    features = np.random.default_rng(8).random((120, 4))
    return features, (features[:, 0] + features[:, 1] > 1.0).astype(int)


def _rows() -> np.ndarray:
    return np.asarray(ROWS)


def xgboost_json(folder: Path, suffix: str = ".json") -> Saved:
    from xgboost import XGBClassifier

    model = XGBClassifier(n_estimators=8, max_depth=3).fit(*training())
    path = folder / f"xgb{suffix}"
    model.save_model(path)
    return Saved(path, ROWS, model.predict(_rows()).tolist(), model.predict_proba(_rows()).tolist())


def xgboost_ubj(folder: Path) -> Saved:
    return xgboost_json(folder, ".ubj")


def lightgbm_text(folder: Path) -> Saved:
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(n_estimators=8, verbose=-1).fit(*training())
    path = folder / "model.txt"
    model.booster_.save_model(path)
    return Saved(path, ROWS, model.predict(_rows()).tolist(), model.predict_proba(_rows()).tolist())


def catboost_cbm(folder: Path) -> Saved:
    from catboost import CatBoostClassifier

    model = CatBoostClassifier(iterations=10, verbose=False, allow_writing_files=False).fit(*training())
    path = folder / "model.cbm"
    model.save_model(str(path))
    predicted = model.predict(_rows()).reshape(-1).tolist()
    return Saved(path, ROWS, predicted, model.predict_proba(_rows()).tolist())


def skops_pipeline(folder: Path) -> Saved:
    """A pipeline with a type skops does not trust by default (operator.neg), so it needs --trust."""
    import skops.io
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    model = make_pipeline(FunctionTransformer(operator.neg), LogisticRegression()).fit(*training())
    path = folder / "model.skops"
    skops.io.dump(model, path)
    predicted = model.predict(_rows()).tolist()
    return Saved(path, ROWS, predicted, model.predict_proba(_rows()).tolist(), ("--trust", TRUST))


def _torch_net() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()


def _torch_outputs(net: Any) -> list[list[float]]:
    import torch

    with torch.no_grad():
        return net(torch.tensor(ROWS, dtype=torch.float32)).numpy().tolist()  # type: ignore[no-any-return]


def torchscript(folder: Path) -> Saved:
    import torch

    net = _torch_net()
    path = folder / "model.pt"
    with warnings.catch_warnings():  # torch 2.13 deprecates scripting new models; archives still load
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(path))
    return Saved(path, ROWS, _torch_outputs(net))


def torch_export(folder: Path) -> Saved:
    import torch

    net = _torch_net()
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(net, (torch.zeros(2, 4),), dynamic_shapes=({0: batch},))
    path = folder / "model.pt2"
    torch.export.save(program, str(path))
    return Saved(path, ROWS, _torch_outputs(net))


def torch_saved(folder: Path) -> Path:
    """What PyTorch also lets you do, and amms refuses with what to do instead."""
    import torch

    path = folder / "module.pth"
    torch.save(_torch_net(), str(path))
    return path


def keras_model(folder: Path) -> Saved:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    path = folder / "model.keras"
    with warnings.catch_warnings():  # keras' torch backend trips numpy 2's __array__(copy=) deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        model.save(path)
        predicted = model.predict(np.asarray(ROWS, dtype="float32"), verbose=0).tolist()
    return Saved(path, ROWS, predicted)


def transformers_folder(folder: Path) -> Saved:
    """A tiny BERT text classifier: config, random weights, and a word-level tokenizer trained here."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast, pipeline

    words = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    words.train_from_iterator(
        [text.lower() for text in TEXTS] + ["good film", "bad movie"],
        trainers.WordLevelTrainer(special_tokens=["[UNK]", "[PAD]", "[CLS]", "[SEP]"]),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=words, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    )
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    path = folder / "bert"
    BertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    classify = pipeline("text-classification", model=str(path), tokenizer=str(path), device=-1)
    scores = [{entry["label"]: entry["score"] for entry in result} for result in classify(TEXTS, top_k=None)]
    predicted = [max(score, key=score.__getitem__) for score in scores]
    return Saved(path, TEXTS, predicted, [[score["negative"], score["positive"]] for score in scores])


def mlflow_folder(folder: Path) -> Saved:
    """mlflow.sklearn.save_model of a LogisticRegression fitted on a DataFrame, with its signature."""
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    features, labels = training()
    frame = pd.DataFrame(features, columns=["a", "b", "c", "d"])
    model = LogisticRegression().fit(frame, labels)
    path = folder / "mlflow_model"
    shutil.rmtree(path, ignore_errors=True)
    mlflow.sklearn.save_model(model, str(path), signature=infer_signature(frame, model.predict(frame)))
    records = [dict(zip(["a", "b", "c", "d"], row, strict=True)) for row in ROWS]
    return Saved(path, records, model.predict(pd.DataFrame(records)).tolist())


SAVERS: dict[str, Callable[[Path], Saved]] = {
    "xgboost_json": xgboost_json,
    "xgboost_ubj": xgboost_ubj,
    "lightgbm": lightgbm_text,
    "catboost": catboost_cbm,
    "skops": skops_pipeline,
    "torchscript": torchscript,
    "torch_export": torch_export,
    "keras": keras_model,
    "transformers": transformers_folder,
    "mlflow": mlflow_folder,
}
FORMAT_OF = {
    "xgboost_json": "xgboost",
    "xgboost_ubj": "xgboost",
    "lightgbm": "lightgbm",
    "catboost": "catboost",
    "skops": "skops",
    "torchscript": "torchscript",
    "torch_export": "torch_export",
    "keras": "keras",
    "transformers": "transformers",
    "mlflow": "mlflow",
}
