"""The Python API, for notebooks and scripts: `save_model` publishes a model object straight from
memory (no manual pickling), `load_model` loads a published version as the server would."""

from amms_cli.api.local_model import LocalModel, load_model
from amms_cli.api.saving import SavedVersion, save_model

__all__ = ["LocalModel", "SavedVersion", "load_model", "save_model"]
