"""Loaders, one module per format, chosen from the manifest's `loader` field through `LOADERS`.

`load_version` is the only way the server turns a version folder into a model: it verifies every
recorded checksum before any file is opened by a loader (unpickling runs code).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from amms_cli.errors import AmmsError, ModelLoadError
from amms_cli.loaders import custom, onnx, pickle_family
from amms_cli.loaders.base import Model
from amms_cli.repository.manifest import Manifest, verify_artifacts

LoadFunction = Callable[[Path], Model]


def _pickle_loader(name: str) -> LoadFunction:
    return lambda path: pickle_family.load(path, name)


LOADERS: dict[str, LoadFunction] = {
    "pickle": _pickle_loader("pickle"),
    "cloudpickle": _pickle_loader("cloudpickle"),
    "joblib": _pickle_loader("joblib"),
    "onnx": onnx.load,
    "custom": custom.load,
}

# Formats whose loading executes code from the artifact (see README "Security").
RUNS_CODE = frozenset({"pickle", "cloudpickle", "joblib", "custom"})


def entrypoint_path(version_dir: Path, manifest: Manifest) -> Path:
    return version_dir if manifest.entrypoint == "." else version_dir / manifest.entrypoint


def load_version(version_dir: Path, manifest: Manifest) -> Model:
    """Verify checksums, then load. Every failure becomes a ModelLoadError naming the cause."""
    verify_artifacts(version_dir, manifest)
    load = LOADERS.get(manifest.loader)
    if load is None:
        raise ModelLoadError(f"unknown loader '{manifest.loader}' (known: {', '.join(LOADERS)})")
    try:
        return load(entrypoint_path(version_dir, manifest))
    except AmmsError:
        raise
    except Exception as exc:
        reason = " ".join(str(exc).split())  # one line, whatever the foreign exception printed
        raise ModelLoadError(f"{manifest.loader} load failed: {type(exc).__name__}: {reason}") from exc


__all__ = ["LOADERS", "RUNS_CODE", "Model", "entrypoint_path", "load_version"]
