"""`amms_cli.save_model(model, name, ...)`: write an in-memory model in its framework's own format
(XGBoost/LightGBM boosters, CatBoost, Keras, PyTorch, ONNX, transformers pipelines) or joblib for
everything else (cloudpickle when it refers to a notebook's own code), then publish it as
`amms add-model` (its first version) or `amms bump-version` (the next ones) would: the same trial load
in a child process, the same manifest, the same atomic publish and config update."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

import numpy as np

from amms_cli.errors import ConfigError
from amms_cli.loaders import LOADERS
from amms_cli.loaders.pickle_family import write_pickled
from amms_cli.project.authoring import PublishResult, add_model, bump_version, init_project
from amms_cli.project.config import load_config
from amms_cli.project.input_facts import FRAME_SUFFIX
from amms_cli.repository.versions import BumpPart

CONFIG_NAME = "amms.json"


@dataclass(frozen=True)
class SavedVersion:
    """A version `save_model` published."""

    name: str
    version: str
    path: Path  # the version folder
    config: Path  # the project's amms.json
    loader: str  # the format it was saved in (the manifest's `loader`)
    served: bool  # whether the entry's aspired_version selects it
    note: str | None = None  # why it is not served, when it is not

    def __str__(self) -> str:
        state = "served" if self.served else f"not served: {self.note}"
        return f"{self.name} {self.version} ({self.loader}) in {self.path} [{state}]"


def save_model(
    model: Any,
    name: str,
    *,
    example: Any = None,
    project: str | os.PathLike[str] = ".",
    bump: BumpPart = "patch",
    aspired: str | None = None,
    servable: str | None = None,
) -> SavedVersion:
    """Publish `model` as the next version of `name` in the amms project at `project` (created, with
    its amms.json and models/ folder, when missing). The first save publishes 1.0.0 and adds the
    config entry; later saves bump the newest version (`bump`: patch, minor or major).

    `example`: one or a few input rows (a DataFrame keeps its column names and dtypes; a numpy array
    or JSON-like lists and records), predicted once as the proof that the model works and recorded as
    the smoke check of every load. Later saves reuse the previous version's example when given none.
    `aspired` and `servable` apply to the first save; after that they live in amms.json.
    Raises the same AmmsError subclasses, with the same messages and hints, as the CLI."""
    if bump not in get_args(BumpPart):
        raise ConfigError(f"bump={bump!r} is not one of {', '.join(get_args(BumpPart))}")
    folder = Path(project).expanduser()
    config_path = folder / CONFIG_NAME
    if not config_path.exists():
        init_project(folder)
    with tempfile.TemporaryDirectory(prefix="amms-save-") as tmp:
        scratch = Path(tmp)
        artifact = write_model(model, scratch / "model" / name)
        given = example_value(example, scratch)
        entry = load_config(config_path).entry(name)
        if entry is None:
            result = add_model(config_path, artifact, name=name, servable=servable, aspired=aspired, example=given)
        else:
            _check_unchanged(name, "aspired", aspired, entry.aspired_version)
            _check_unchanged(name, "servable", servable, entry.servable_name)
            result = bump_version(config_path, name, source=artifact, part=bump, example=given)
    return _saved(result, config_path)


def write_model(model: Any, target: Path) -> Path:
    """The model written under `target` (a path without suffix) in the first format that holds it
    natively, else pickled; a path to a saved model file or folder is used as it is."""
    if isinstance(model, os.PathLike):
        return Path(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    for facts in LOADERS.values():
        if facts.writer is not None and facts.writer.accepts(model):
            return facts.writer.write(model, target)
    return write_pickled(model, target)


def example_value(example: Any, scratch: Path) -> Any:
    """The example as `add_model` takes it: a DataFrame as a file that keeps its dtypes exactly,
    arrays as lists, JSON-like values as they are."""
    if example is None:
        return None
    if hasattr(example, "to_pickle") and hasattr(example, "dtypes") and hasattr(example, "columns"):
        path = scratch / f"example{FRAME_SUFFIX}"
        example.to_pickle(path)
        return path
    if isinstance(example, np.ndarray):
        return example.tolist()
    try:
        return json.loads(json.dumps(example, default=_plain))
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"example of type {type(example).__name__} cannot be recorded: {exc}",
            hint="pass a pandas DataFrame, a numpy array, or JSON-like lists and records",
        ) from None


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON")


def _check_unchanged(name: str, option: str, given: str | None, recorded: str | None) -> None:
    if given is not None and given != recorded:
        raise ConfigError(
            f"model '{name}' already exists with {option} {recorded!r}; {option}={given!r} applies to a first save",
            hint=f"change {option} in {CONFIG_NAME}, or leave it out",
        )


def _saved(result: PublishResult, config_path: Path) -> SavedVersion:
    published = result.published
    manifest = published.manifest
    assert manifest is not None  # a published version always has one
    return SavedVersion(
        name=result.entry.model_name,
        version=str(published.version),
        path=published.path,
        config=config_path,
        loader=manifest.loader,
        served=result.not_served_reason is None,
        note=result.not_served_reason,
    )
