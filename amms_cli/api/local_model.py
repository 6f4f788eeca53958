"""`amms_cli.load_model(name, ...)`: the version the server would serve, loaded the way it would load
it (checksums verified, the recorded example run as a smoke check), for a check in the notebook
before the server picks it up."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amms_cli.errors import NotFound
from amms_cli.loaders import Model, jsonable
from amms_cli.project.config import load_config
from amms_cli.repository.manifest import Manifest
from amms_cli.repository.scan import scan_model
from amms_cli.repository.versions import Version
from amms_cli.servables import Servable
from amms_cli.serving.loading import load_checked

CONFIG_NAME = "amms.json"


@dataclass
class LocalModel:
    """A published version, loaded in this process. `predict` takes what the HTTP API's `inputs`
    takes (rows, records, columns, texts: whatever the model's servable accepts) and answers what
    the server would put in `outputs`."""

    name: str
    version: str
    path: Path
    manifest: Manifest
    model: Model
    servable: Servable

    def predict(self, inputs: Any) -> Any:
        return jsonable(self.model.predict(self.servable.model_input(inputs)))

    def predict_proba(self, inputs: Any) -> Any:
        if not self.model.has_predict_proba:
            raise NotFound(f"model '{self.name}' {self.version} has no class probabilities")
        return jsonable(self.model.predict_proba(self.servable.model_input(inputs)))

    @property
    def native(self) -> Any:
        """The framework's own object (the estimator, booster or pipeline), where the loader keeps one."""
        return getattr(self.model, "obj", self.model)

    def close(self) -> None:
        self.model.close()


def load_model(name: str, *, project: str | os.PathLike[str] = ".", version: str | None = None) -> LocalModel:
    """Load `version` of `name` (default: the one the config's aspired_version selects, as the
    server would) from the amms project at `project`."""
    config = load_config(Path(project).expanduser() / CONFIG_NAME)
    entry = config.entry(name)
    if entry is None:
        raise NotFound(
            f"model '{name}' is not in {config.path}",
            hint=f"save it first: amms_cli.save_model(model, {name!r}, project=...)",
        )
    on_disk = scan_model(config.model_dir(entry), name)
    item = on_disk.get(Version.parse(version)) if version is not None else on_disk.resolve(entry.pattern)
    if item is None or item.manifest is None:
        wanted = version or f"matching {entry.aspired_version}"
        raise NotFound(f"model '{name}' has no complete version {wanted} in {config.model_dir(entry)}")
    checked = load_checked(entry, item, None)
    return LocalModel(name, str(item.version), item.path, item.manifest, checked.model, checked.servable)
