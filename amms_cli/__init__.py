"""amms: Another Multi Model Server.

The Python API (README "Python API"): `save_model` publishes a model object as a new version of an
amms project, `load_model` loads the version the server would serve."""

from amms_cli.api import LocalModel, SavedVersion, load_model, save_model
from amms_cli.version import __version__

__all__ = ["LocalModel", "SavedVersion", "__version__", "load_model", "save_model"]
