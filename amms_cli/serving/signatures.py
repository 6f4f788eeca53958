"""What a loaded version returns, as named, typed tensors (for the TF Serving and v2 metadata):
`predict` always, `predict_proba` when the model gives class probabilities."""

from __future__ import annotations

from amms_cli.servables.tensors import TensorSpec, datatype_of_values
from amms_cli.serving.loaded_version import LoadedVersion

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"


def output_specs(loaded: LoadedVersion) -> list[TensorSpec]:
    classes = loaded.info.classes or loaded.model.classes
    outputs = [TensorSpec(PREDICT, datatype_of_values(classes) if classes else "FP64", [-1])]
    if loaded.model.has_predict_proba:
        outputs.append(TensorSpec(PREDICT_PROBA, "FP64", [-1, len(classes) if classes else -1]))
    return outputs


def output_names(loaded: LoadedVersion) -> list[str]:
    return [PREDICT, PREDICT_PROBA] if loaded.model.has_predict_proba else [PREDICT]
