"""Loaders, one module per model format, each declaring its facts once (`LoaderFacts`); `LOADERS` maps
the manifest's `loader` field to them, in the order `detect_format` tries them.

`load_version` is the only way the server turns a version folder into a model: it verifies every
recorded checksum before any file is opened by a loader (unpickling runs code).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

from amms_cli.errors import AmmsError, ModelLoadError, RepositoryError
from amms_cli.loaders.base import LoaderFacts, LoadOptions, Model, jsonable
from amms_cli.loaders.catboost import CATBOOST
from amms_cli.loaders.custom import CUSTOM, MODEL_FILE
from amms_cli.loaders.huggingface import TRANSFORMERS
from amms_cli.loaders.keras import KERAS
from amms_cli.loaders.lightgbm import LIGHTGBM
from amms_cli.loaders.mlflow import MLFLOW
from amms_cli.loaders.onnx import ONNX
from amms_cli.loaders.pickle_family import CLOUDPICKLE, JOBLIB, PICKLE
from amms_cli.loaders.skops import SKOPS
from amms_cli.loaders.torch import TORCH_EXPORT, TORCHSCRIPT
from amms_cli.loaders.xgboost import XGBOOST
from amms_cli.repository.manifest import Manifest, verify_artifacts

# In detection order: folders first (a model.py wins over the files beside it), then files whose
# content names them, pickles last (joblib and cloudpickle files are pickles too).
_IN_DETECTION_ORDER = (
    CUSTOM,
    MLFLOW,
    TRANSFORMERS,
    ONNX,
    XGBOOST,
    LIGHTGBM,
    CATBOOST,
    SKOPS,
    KERAS,
    TORCHSCRIPT,
    TORCH_EXPORT,
    JOBLIB,
    CLOUDPICKLE,
    PICKLE,
)
LOADERS: dict[str, LoaderFacts] = {facts.name: facts for facts in _IN_DETECTION_ORDER}
FORMATS = tuple(sorted(LOADERS))  # for help texts


def detect_format(path: Path) -> str:
    """The name of the first loader that recognises `path`."""
    for facts in LOADERS.values():
        if facts.detect(path):
            return facts.name
    for facts in LOADERS.values():
        explained = facts.misfit(path) if facts.misfit is not None else None
        if explained is not None:
            raise RepositoryError(explained[0], hint=explained[1])
    named = next((facts.name for facts in LOADERS.values() if path.suffix.lower() in facts.suffixes), None)
    if named is not None:
        raise RepositoryError(
            f"{path.name} is named like a {named} file, but its content is not one (truncated or corrupt?)",
            hint=f"save the model again, or pass --format {named} to see the {named} loader's own error",
        )
    if path.is_dir():
        raise RepositoryError(
            f"{path} is a folder without {MODEL_FILE}",
            hint=f"a custom model folder needs a {MODEL_FILE} with a class that has load() and predict()",
        )
    raise RepositoryError(
        f"cannot tell the format of {path.name}: not a file of any format amms knows ({', '.join(FORMATS)})",
        hint=f"pass --format {'|'.join(FORMATS)} if you know it",
    )


def entrypoint_path(version_dir: Path, manifest: Manifest) -> Path:
    return version_dir if manifest.entrypoint == "." else version_dir / manifest.entrypoint


def load_version(version_dir: Path, manifest: Manifest, *, before_open: Callable[[], None] | None = None) -> Model:
    """Verify checksums, import the library modules opening it imports (recorded at publish time),
    call `before_open`, then load: memory measured from `before_open` on is the model's own, not its
    libraries'. Every failure becomes a ModelLoadError naming the cause."""
    verify_artifacts(version_dir, manifest)
    facts = LOADERS.get(manifest.loader)
    if facts is None:
        raise ModelLoadError(f"unknown loader '{manifest.loader}' (known: {', '.join(LOADERS)})")
    path = entrypoint_path(version_dir, manifest)
    _import_all(_imports(facts, path, manifest))
    if before_open is not None:
        before_open()
    try:
        return facts.load(path, LoadOptions(tuple(manifest.trusted_types)))
    except AmmsError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the foreign exception printed
        raise ModelLoadError(f"{manifest.loader} load failed: {type(exc).__name__}: {reason}") from exc


def _imports(facts: LoaderFacts, path: Path, manifest: Manifest) -> list[str]:
    """The manifest's list; an older manifest's: the loader's own fixed list for formats that run no
    code (reading it is free), none for the others (scanning a pickle costs more than loading it)."""
    if manifest.imports or facts.runs_code:
        return manifest.imports
    return sorted(facts.modules_named(path))


def _import_all(names: list[str]) -> None:
    """Import installed modules; one that fails to import is left for the loader to report in its
    own words."""
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # the load itself reports what is missing
            continue


__all__ = [
    "FORMATS",
    "LOADERS",
    "LoadOptions",
    "LoaderFacts",
    "Model",
    "detect_format",
    "entrypoint_path",
    "jsonable",
    "load_version",
]
