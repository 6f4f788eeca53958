"""What a loaded version returns, as named, typed tensors (for the TF Serving and v2 metadata):
`predict` always, `predict_proba` when the model gives class probabilities. Each is what a real
prediction of the recorded example returned; a classifier's labels say what `predict` returns
without one; anything else is unknown (None), never guessed."""

from __future__ import annotations

from typing import Any, Protocol

from amms_cli.repository.manifest import PREDICT, PREDICT_PROBA, Manifest
from amms_cli.servables import Servable
from amms_cli.servables.tensors import TensorSpec, datatype_of_values


class VersionFacts(Protocol):
    """What the signatures are read from: a LoadedVersion, or (not loaded) a registry.Described."""

    @property
    def name(self) -> str: ...
    @property
    def version_text(self) -> str: ...
    @property
    def manifest(self) -> Manifest: ...
    @property
    def servable(self) -> Servable: ...
    @property
    def classes(self) -> list[Any] | None: ...
    @property
    def has_predict_proba(self) -> bool: ...


def output_specs(loaded: VersionFacts) -> dict[str, TensorSpec | None]:
    """Every output by name: its tensor, or None when nothing tells what it is."""
    recorded = loaded.manifest.outputs
    labels = _flat(loaded.manifest.input.classes or loaded.classes)
    specs: dict[str, TensorSpec | None] = {}
    for name in output_names(loaded):
        known = recorded.get(name)
        if known is not None:
            specs[name] = TensorSpec(name, known.datatype, known.shape)
        elif labels and name == PREDICT:
            specs[name] = TensorSpec(name, datatype_of_values(labels), [-1])
        elif labels and name == PREDICT_PROBA:
            specs[name] = TensorSpec(name, "FP64", [-1, len(labels)])
        else:
            specs[name] = None
    return specs


def output_names(loaded: VersionFacts) -> list[str]:
    return [PREDICT, PREDICT_PROBA] if loaded.has_predict_proba else [PREDICT]


def _flat(classes: list[Any] | None) -> list[Any] | None:
    """Class labels of a single-output classifier (a multi-output one has a list of arrays)."""
    if classes and not any(isinstance(label, list) for label in classes):
        return classes
    return None
