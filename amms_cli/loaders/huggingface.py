"""Hugging Face transformers models saved with `save_pretrained` (a folder: config.json, the weights,
the tokenizer), served as the `pipeline` of the task their config records; the extra
`amms_cli[transformers]`. Text classification answers labels (predict) and every label's score
(predict_proba). Remote code is never trusted; weights in the pickle-based .bin format are read by
torch.load, so the format counts as running code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from amms_cli.errors import ModelLoadError
from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, Writer, instance_of, missing_extra

CONFIG = "config.json"
WEIGHTS = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
TASKS = {"ForSequenceClassification": "text-classification"}  # architecture suffix -> pipeline task


class TransformersModel(Model):
    framework = "transformers"

    def __init__(self, pipeline: Any, labels: list[str]) -> None:
        self.obj = pipeline
        self.labels = labels

    def _scores(self, texts: Any) -> list[dict[str, float]]:
        results = self.obj(list(texts), top_k=None, truncation=True)
        return [{entry["label"]: float(entry["score"]) for entry in result} for result in results]

    def predict(self, inputs: Any) -> Any:
        return [max(scores, key=scores.__getitem__) for scores in self._scores(inputs)]

    @property
    def has_predict_proba(self) -> bool:
        return True

    def predict_proba(self, inputs: Any) -> Any:
        return np.array([[scores[label] for label in self.labels] for scores in self._scores(inputs)])

    @property
    def classes(self) -> list[Any] | None:
        return list(self.labels)

    @property
    def row_independent(self) -> bool:
        return True

    def close(self) -> None:
        self.obj = None


def task_of(config: dict[str, Any]) -> str:
    for architecture in config.get("architectures") or []:
        for suffix, task in TASKS.items():
            if str(architecture).endswith(suffix):
                return task
    known = ", ".join(f"*{suffix}" for suffix in TASKS)
    raise ModelLoadError(
        f"this transformers model is a {config.get('architectures')}, not a task amms serves (known: {known})",
        hint="serve it from a folder with a model.py that runs the pipeline you need",
    )


def load(folder: Path, options: LoadOptions) -> Model:
    try:
        import transformers
    except ImportError:
        raise missing_extra("transformers") from None
    logging: Any = transformers.utils.logging
    logging.disable_progress_bar()  # its bars would fill the server log
    config = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    task = task_of(config)
    make_pipeline: Any = transformers.pipeline  # typed per task; the task is only known at run time
    pipeline = make_pipeline(task, model=str(folder), tokenizer=str(folder), device=-1, trust_remote_code=False)
    labels = [str(pipeline.model.config.id2label[index]) for index in sorted(pipeline.model.config.id2label)]
    return TransformersModel(pipeline, labels)


def _is_transformers(path: Path) -> bool:
    if not path.is_dir() or not (path / CONFIG).is_file():
        return False
    return any((path / name).is_file() for name in WEIGHTS)


def _write(obj: Any, target: Path) -> Path:
    """A pipeline's model and tokenizer, as save_pretrained writes them."""
    obj.save_pretrained(str(target))
    return target


def _modules(path: Path) -> set[str]:
    return {"transformers", "tokenizers", "safetensors", "torch"}


TRANSFORMERS = LoaderFacts(
    name="transformers",
    description="Hugging Face save_pretrained folders (config.json, weights, tokenizer); "
    "pip install 'amms_cli[transformers]'",
    load=load,
    detect=_is_transformers,
    runs_code=True,  # .bin weights are pickles; remote code is never trusted
    modules_named=_modules,
    folder=True,
    servable="text_input",
    writer=Writer(lambda obj: instance_of(obj, "transformers", "Pipeline"), _write),
)
